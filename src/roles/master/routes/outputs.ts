// GET /outputs: the catalog of written outputs (CONTRACT section 6).
import { Elysia, t } from 'elysia'
import { ApiError, ErrorBody } from '../../../api/errors'
import { OutputInfo, OutputsQuery } from '../../../api/outputs'
import type { OutputRecord } from '../catalog'
import type { MasterState } from '../state'

export const outputRoutes = (state: MasterState) =>
  new Elysia()
    .get('/outputs', ({ query }) => {
      if (query.path === undefined) return [...state.outputs.values()].sort((a, b) => b.atMs - a.atMs).map(o => outputInfo(o, false))
      const o = state.outputs.get(query.path.replace(/\/+$/, ''))
      if (o === undefined) throw new ApiError('NOT_FOUND', `no output "${query.path}" is known: GET /outputs lists the outputs jobs wrote`, { path: query.path })
      return [outputInfo(o, true)]
    }, {
      query: OutputsQuery, response: { 200: t.Array(OutputInfo), 404: ErrorBody },
      detail: { summary: 'outputs written by jobs, newest first; with `path`, that one with the workers holding each part', tags: ['outputs'] },
    })

function outputInfo(o: OutputRecord, withFiles: boolean): OutputInfo {
  const parts = o.parts.filter(p => p != null)
  const info: OutputInfo = {
    path: o.path, job_id: o.job, written_at: new Date(o.atMs).toISOString(), replicas: o.replicas, parts: parts.length,
    bytes: parts.reduce((n, p) => n + p.bytes, 0), records: parts.reduce((n, p) => n + p.records, 0),
  }
  if (withFiles) info.files = parts.map(p => ({ part: p.part, file: p.file, bytes: p.bytes, records: p.records, workers: p.copies.map(c => c.worker) }))
  return info
}
