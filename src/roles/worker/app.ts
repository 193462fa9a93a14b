// The worker's HTTP app and routes: task dispatch, the shuffle data service, file questions from the
// master. Routes translate; the driver (and its step), the block store and the file thread decide
// and act. File work that grows with user data is awaited from the file thread, so a route that
// lists 100 000 files never stops this thread from beating.
import { t } from 'elysia'
import { ApiError, ErrorBody } from '../../api/errors'
import { FinalizeRequest, ListAnswer, ListRequest, ShuffleFetch, TaskBatch, TaskBatchAnswer, TaskSpec } from '../../api/tasks'
import { roleApp } from '../http'
import type { ProcessMetrics } from '../process-metrics'
import type { Logger } from '../log'
import type { BlockStore } from './block-store'
import type { WorkerDriver } from './driver'
import type { FileWork } from './files/work'
import type { PeerClient } from '../../api/peers'
import type { Reserved } from './listing'
import { partPath, pullPart } from './data-service'

export type WorkerContext = {
  tasks(): Pick<WorkerDriver, 'submit' | 'kill' | 'dropJob'>
  blocks(): BlockStore
  files(): FileWork
  dataDir: string
  /** paths no job may touch (the work dir): parts are never served or written there */
  own: readonly Reserved[]
  peers: PeerClient
}

export function workerApp(ctx: WorkerContext, token: string | undefined, metrics?: ProcessMetrics, logger?: Logger) {
  return roleApp('Mini-Spark worker', 'Task dispatch, the shuffle data service and file listing of a Mini-Spark worker. Internal: used by the master and by peer workers.', token, metrics, logger)
    .post('/tasks', ({ body, set }) => {
      // A task for an older incarnation of this worker, or of a job that has ended, is refused.
      const refused = ctx.tasks().submit(body)
      if (refused !== null) throw new ApiError(refused.code, refused.message)
      set.status = 202
      return { accepted: true as const }
    }, { body: TaskSpec, response: { 202: t.Object({ accepted: t.Literal(true) }), 400: ErrorBody }, detail: { summary: 'run a task attempt (pushed by the master)', tags: ['tasks'] } })
    .post('/tasks/batch', ({ body }) => ({
      results: body.tasks.map(spec => {
        const refused = ctx.tasks().submit(spec)
        if (refused !== null) return { attempt_id: spec.attempt_id, accepted: false, error: refused }
        return { attempt_id: spec.attempt_id, accepted: true }
      }),
    }), { body: TaskBatch, response: { 200: TaskBatchAnswer, 400: ErrorBody }, detail: { summary: 'run several task attempts (pushed by the master while an earlier launch was on its way); each is accepted or refused on its own', tags: ['tasks'] } })
    .delete('/tasks/:attempt', ({ params }) => ({ killed: ctx.tasks().kill(params.attempt) }),
      { params: t.Object({ attempt: t.String() }), detail: { summary: 'stop a task attempt', tags: ['tasks'] } })
    .post('/shuffle_data/fetch', ({ body }) => {
      const ranges = ctx.blocks().locate(body.job_id, body.shuffle_id, body.reduce_partition, body.attempts)
      if ('missing' in ranges) {
        throw new ApiError('NOT_FOUND', `no shuffle block of attempt ${ranges.missing} for ${body.shuffle_id} here: the map output was lost, re-run it`)
      }
      return new Response(ctx.blocks().stream(ranges), { headers: { 'content-type': 'application/octet-stream' } })
    }, { body: ShuffleFetch, detail: { summary: 'stream one reduce partition of many map outputs, as msgpack frames', tags: ['shuffle'] } })
    .get('/shuffle_data/shuffle/:job/:shuffle/:reduce/:attempt', ({ params }) => {
      const ranges = ctx.blocks().locate(params.job, params.shuffle, params.reduce, [params.attempt])
      if ('missing' in ranges) throw new ApiError('NOT_FOUND', `no shuffle block of attempt ${params.attempt} for ${params.shuffle} here: the map output was lost, re-run it`)
      return new Response(ctx.blocks().stream(ranges), { headers: { 'content-type': 'application/octet-stream' } })
    }, {
      params: t.Object({ job: t.String(), shuffle: t.String(), reduce: t.Integer({ minimum: 0 }), attempt: t.String() }),
      detail: { summary: 'stream one shuffle block by id: the frames of one reduce partition written by one map attempt', tags: ['shuffle'] },
    })
    .get('/shuffle_data/output/*', ({ params }) => {
      const file = Bun.file(partPath(ctx.dataDir, decodeURIComponent(params['*']), ctx.own))
      return file.exists().then(there => {
        if (!there) throw new ApiError('NOT_FOUND', `no part ${params['*']} on this worker's disk`)
        return new Response(file, { headers: { 'content-type': 'application/octet-stream' } })
      })
    }, { detail: { summary: 'stream one committed output part by its path (FOLDER/part-N): replicas and remote reads', tags: ['shuffle'] } })
    .post('/outputs/replicate', async ({ body }) => ({ ok: true as const, bytes: await pullPart(ctx.dataDir, body.file, body.from, ctx.peers, ctx.own) }), {
      body: t.Object({ file: t.String({ description: 'FOLDER/part-N, relative to the data dir' }), from: t.String({ description: 'HOST:PORT of a worker that holds it' }) }),
      detail: { summary: 'copy a committed output part from a peer onto this disk (a replica)', tags: ['files'] },
    })
    .post('/inputs/list', async ({ body }) => new Response(await ctx.files().listJson(ctx.dataDir, body), { headers: { 'content-type': 'application/json' } }),
      { body: ListRequest, response: { 200: ListAnswer }, detail: { summary: 'list input files and check outputs for planning', tags: ['files'] } })
    .post('/outputs/clear', async ({ body }) => { await ctx.files().clear(ctx.dataDir, body.paths, body.older_than_ms); return { ok: true as const } },
      { body: t.Object({ paths: t.Array(t.String()), older_than_ms: t.Optional(t.Integer({ minimum: 0 })) }), detail: { summary: 'remove outputs a job overwrites (with older_than_ms: only their files older than that)', tags: ['files'] } })
    .post('/outputs/finalize', async ({ body }) => { await ctx.files().finalize(ctx.dataDir, body.job_id, body.paths, body.swaps ?? [], body.settle ?? []); return { ok: true as const } },
      { body: FinalizeRequest, detail: { summary: 'swap replaced outputs in, then mark write outputs complete (_SUCCESS)', tags: ['files'] } })
    .post('/jobs/:id/drop', async ({ params, body }) => {
      const killed = ctx.tasks().dropJob(params.id)
      await ctx.files().dropOutputs(ctx.dataDir, body.outputs, body.keep_outputs)
      return { killed }
    }, {
      params: t.Object({ id: t.String() }),
      body: t.Object({ outputs: t.Array(t.String()), keep_outputs: t.Boolean() }),
      detail: { summary: 'stop a job\'s attempts, drop its shuffle data and temporary files (and its outputs when it failed)', tags: ['tasks'] },
    })
}
