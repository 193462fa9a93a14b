// GET /datasets, GET /datasets/:name, DELETE /datasets/:name: the persisted datasets the catalog
// holds (CONTRACT section 8).
import { Elysia, t } from 'elysia'
import { ApiError, ErrorBody } from '../../../api/errors'
import { DatasetInfo } from '../../../api/datasets'
import { lostPartitions, type DatasetRecord } from '../catalog'
import type { MasterCore } from '../core'
import type { MasterState } from '../state'

const Name = t.Object({ name: t.String({ minLength: 1, maxLength: 128 }) })

export const datasetRoutes = (state: MasterState, core: Pick<MasterCore, 'deleteDataset'>) =>
  new Elysia()
    .get('/datasets', () => [...state.datasets.values()].sort((a, b) => b.atMs - a.atMs).map(d => datasetInfo(state, d)), {
      response: { 200: t.Array(DatasetInfo) },
      detail: { summary: 'datasets kept on the workers by persist sinks, newest first, with where each partition is', tags: ['datasets'] },
    })
    .get('/datasets/:name', ({ params }) => datasetInfo(state, known(state, params.name)), {
      params: Name, response: { 200: DatasetInfo, 404: ErrorBody },
      detail: { summary: 'one persisted dataset', tags: ['datasets'] },
    })
    .delete('/datasets/:name', async ({ params }) => {
      const info = datasetInfo(state, known(state, params.name))
      if (!await core.deleteDataset(params.name)) throw unknown(params.name)
      return info
    }, {
      params: Name, response: { 200: DatasetInfo, 404: ErrorBody },
      detail: { summary: 'forget a persisted dataset: every worker frees its memory and files', tags: ['datasets'] },
    })

const unknown = (name: string): ApiError =>
  new ApiError('NOT_FOUND', `no dataset "${name}" is known: GET /datasets lists the datasets persist sinks kept`, { name })

function known(state: MasterState, name: string): DatasetRecord {
  const d = state.datasets.get(name)
  if (d === undefined) throw unknown(name)
  return d
}

export function datasetInfo(state: MasterState, d: DatasetRecord): DatasetInfo {
  const lost = new Set(lostPartitions(state, d))
  const held = d.blocks.filter(b => !lost.has(b.partition))
  const info: DatasetInfo = {
    name: d.name, job_id: d.job, level: d.level, state: lost.size === 0 ? 'AVAILABLE' : 'LOST', partitions: d.blocks.length,
    records: d.blocks.reduce((n, b) => n + b.records, 0),
    bytes_memory: held.filter(b => b.where === 'memory').reduce((n, b) => n + b.bytes, 0),
    bytes_disk: held.filter(b => b.where === 'disk').reduce((n, b) => n + b.bytes, 0),
    locations: held.filter(b => b.bytes > 0).map(b => ({ partition: b.partition, worker_id: b.worker, where: b.where })),
    persisted_at: new Date(d.atMs).toISOString(),
    recomputable: d.lineage !== undefined,
  }
  if (lost.size > 0) info.lost_partitions = [...lost]
  const recomputed = d.blocks.filter(b => b.recomputedMs !== undefined).map(b => b.partition)
  if (recomputed.length > 0) info.recomputed_partitions = recomputed
  return info
}
