// The worker's HTTP app and routes: task dispatch, the shuffle data service, file questions from the
// master. Routes translate; the pool, the block store and the listing decide.
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, sep } from 'node:path'
import { t } from 'elysia'
import { ApiError, ErrorBody } from '../../api/errors'
import { FinalizeRequest, ListAnswer, ListRequest, ShuffleFetch, TaskBatch, TaskBatchAnswer, TaskSpec } from '../../api/tasks'
import { roleApp } from '../http'
import type { BlockStore } from './block-store'
import { answerListing, clearOutputs, dropOutputs } from './listing'
import type { ExecutorPool } from './pool'

export type WorkerContext = {
  pool(): ExecutorPool
  blocks(): BlockStore
  /** the incarnation the master gave this worker; undefined before the first answer */
  incarnation(): string | undefined
  dataDir: string
}

/** Jobs remembered as ended, so that a launch still on its way when the job's data was dropped is
 *  refused instead of run (it would take a slot and leave files behind). */
const ENDED_JOBS_KEPT = 10_000

export function workerApp(ctx: WorkerContext, token: string | undefined) {
  const ended = new Set<string>()
  const refusal = (spec: { job_id: string; attempt_id: string; incarnation: string }): ApiError | null => {
    if (spec.incarnation !== ctx.incarnation()) {
      return new ApiError('STALE_INCARNATION', `task ${spec.attempt_id} is for incarnation ${spec.incarnation}, this worker is ${ctx.incarnation() ?? 'not registered yet'}`)
    }
    if (ended.has(spec.job_id)) return new ApiError('UNKNOWN_JOB', `task ${spec.attempt_id} belongs to job ${spec.job_id}, which has ended`)
    return null
  }
  return roleApp('Mini-Spark worker', 'Task dispatch, the shuffle data service and file listing of a Mini-Spark worker. Internal: used by the master and by peer workers.', token)
    .post('/tasks', ({ body, set }) => {
      // A task for an older incarnation of this worker is stale: the master has moved on.
      const refused = refusal(body)
      if (refused !== null) throw refused
      ctx.pool().submit(body)
      set.status = 202
      return { accepted: true as const }
    }, { body: TaskSpec, response: { 202: t.Object({ accepted: t.Literal(true) }), 400: ErrorBody }, detail: { summary: 'run a task attempt (pushed by the master)', tags: ['tasks'] } })
    .post('/tasks/batch', ({ body }) => ({
      results: body.tasks.map(spec => {
        const refused = refusal(spec)
        if (refused !== null) return { attempt_id: spec.attempt_id, accepted: false, error: { code: refused.code, message: refused.message } }
        ctx.pool().submit(spec)
        return { attempt_id: spec.attempt_id, accepted: true }
      }),
    }), { body: TaskBatch, response: { 200: TaskBatchAnswer, 400: ErrorBody }, detail: { summary: 'run several task attempts (pushed by the master while an earlier launch was on its way); each is accepted or refused on its own', tags: ['tasks'] } })
    .delete('/tasks/:attempt', ({ params }) => ({ killed: ctx.pool().kill(params.attempt) }),
      { params: t.Object({ attempt: t.String() }), detail: { summary: 'stop a task attempt', tags: ['tasks'] } })
    .post('/shuffle_data/fetch', ({ body }) => {
      const ranges = ctx.blocks().locate(body.job_id, body.shuffle_id, body.reduce_partition, body.attempts)
      if ('missing' in ranges) {
        throw new ApiError('NOT_FOUND', `no shuffle block of attempt ${ranges.missing} for ${body.shuffle_id} here: the map output was lost, re-run it`)
      }
      return new Response(ctx.blocks().stream(ranges), { headers: { 'content-type': 'application/octet-stream' } })
    }, { body: ShuffleFetch, detail: { summary: 'stream one reduce partition of many map outputs, as msgpack frames', tags: ['shuffle'] } })
    .post('/inputs/list', ({ body }) => answerListing(ctx.dataDir, body),
      { body: ListRequest, response: { 200: ListAnswer }, detail: { summary: 'list input files and check outputs for planning', tags: ['files'] } })
    .post('/outputs/clear', ({ body }) => { clearOutputs(ctx.dataDir, body.paths, body.older_than_ms); return { ok: true as const } },
      { body: t.Object({ paths: t.Array(t.String()), older_than_ms: t.Optional(t.Integer({ minimum: 0 })) }), detail: { summary: 'remove outputs a job overwrites (with older_than_ms: only their files older than that)', tags: ['files'] } })
    .post('/outputs/finalize', ({ body }) => {
      for (const sw of body.swaps ?? []) swapOutput(ctx.dataDir, sw.path, sw.staged, sw.older_than_ms)
      for (const p of body.paths) {
        const dir = join(ctx.dataDir, p)
        mkdirSync(dir, { recursive: true })
        rmSync(join(dir, '_temporary'), { recursive: true, force: true })
        // _SUCCESS last: readers that wait for it see every part.
        writeFileSync(join(dir, '_SUCCESS'), body.job_id)
      }
      return { ok: true as const }
    }, { body: FinalizeRequest, detail: { summary: 'mark write outputs complete (_SUCCESS)', tags: ['files'] } })
    .post('/jobs/:id/drop', ({ params, body }) => {
      ended.add(params.id)
      if (ended.size > ENDED_JOBS_KEPT) ended.delete(ended.values().next().value!)
      const killed = ctx.pool().killJob(params.id)
      ctx.blocks().dropJob(params.id)
      dropOutputs(ctx.dataDir, body.outputs, body.keep_outputs)
      // An overwriting job's parts were staged in OUTPUT/_temporary/JOB: once they are gone, so are
      // the folders the job made for them, if nothing else is in them (the output did not exist).
      for (const p of body.outputs) if (p.includes('/_temporary/')) removeEmptyUpTo(ctx.dataDir, p.slice(0, p.indexOf('/_temporary/')))
      return { killed }
    }, {
      params: t.Object({ id: t.String() }),
      body: t.Object({ outputs: t.Array(t.String()), keep_outputs: t.Boolean() }),
      detail: { summary: 'stop a job\'s attempts, drop its shuffle data and temporary files (and its outputs when it failed)', tags: ['tasks'] },
    })
}

/** Swaps a replaced output in (FinalizeRequest.swaps): the previous output's entries move into a
 *  trash folder, the job's committed parts move from `staged` into `path`, and the trash and
 *  `staged` go (_SUCCESS, naming the job, is written after, for `paths`). Markers make it safe to
 *  repeat after a crash at any point, and a worker on the same data dir as one that did it finds it
 *  done: `_SUCCESS` naming the job means done; `staged`/_MOVING means the previous output is
 *  already in the trash, so only the remaining staged parts move. The master asks one worker at a
 *  time. Where nothing of the job is staged on this disk, only files from before the job
 *  (`olderThanMs`) are removed: a newer output in `path` is never touched. */
function swapOutput(dataDir: string, path: string, staged: string, olderThanMs: number): void {
  const root = realpathSync(dataDir)
  const dir = join(root, path)
  const from = join(root, staged)
  const temporary = join(dir, '_temporary')
  if (!dir.startsWith(root + sep) || !from.startsWith(temporary + sep)) return
  const job = from.slice(temporary.length + 1)
  const success = join(dir, '_SUCCESS')
  if (existsSync(success) && readFileSync(success, 'utf8') === job) return
  const trash = join(temporary, `${job}.previous`)
  const moving = join(from, '_MOVING')
  if (!existsSync(from)) {
    // Nothing of the job here: the previous output's files go by age; a newer output stays.
    clearOutputs(dataDir, [path], olderThanMs)
    return
  }
  if (!existsSync(moving)) {
    mkdirSync(trash, { recursive: true })
    for (const name of readdirSync(dir)) if (name !== '_temporary') moveIfThere(join(dir, name), join(trash, name))
    writeFileSync(moving, '')
  }
  for (const name of readdirSync(from)) {
    if (name === '_MOVING' || statSync(join(from, name), { throwIfNoEntry: false })?.isFile() !== true) continue
    moveIfThere(join(from, name), join(dir, name))
  }
  rmSync(trash, { recursive: true, force: true })
  rmSync(from, { recursive: true, force: true })
  try { rmdirSync(temporary) } catch { /* not empty: another job writes here */ }
}

/** A file another worker sharing this data dir moved or removed meanwhile is not an error. */
function moveIfThere(from: string, to: string): void {
  try { renameSync(from, to) } catch (e) { if ((e as { code?: string }).code !== 'ENOENT') throw e }
}

/** Removes `path`/_temporary and then `path` if each is empty. */
function removeEmptyUpTo(dataDir: string, path: string): void {
  const root = realpathSync(dataDir)
  const dir = join(root, path)
  if (!dir.startsWith(root + sep)) return
  for (const d of [join(dir, '_temporary'), dir]) {
    try { rmdirSync(d) } catch { /* not empty (then neither is `path`), or already gone */ }
  }
}
