// The master's calls to workers: planning questions, task dispatch, kills and clean-up.
import type { FinalizeRequest, ListAnswer, ListRequest, TaskBatchAnswer, TaskSpec } from '../../api/tasks'
import { LAUNCH_TIMEOUT_MS, type OutputSwap } from './events'
import { ApiError } from '../../api/errors'
import { authHeaders } from '../../api/auth'

const TIMEOUT_MS = 10_000
/** A part copied between disks may be large: it streams, and this bounds a stalled copy. */
const REPLICATE_TIMEOUT_MS = 10 * 60_000

/** The worker answered, with an error status: it is there, unlike when a call times out or is refused. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message) }
}

/** The peer's process is gone (nothing listens on its port): no need to wait for its lease. */
export const refused = (e: unknown): boolean => (e as { code?: unknown } | undefined)?.code === 'ECONNREFUSED'

/** `body`: a value to send as JSON, or JSON text already made (a launcher measures its batches). */
async function call(token: string | undefined, address: string, method: string, path: string, body?: unknown, timeoutMs = TIMEOUT_MS): Promise<Response> {
  const res = await fetch(`http://${address}${path}`, {
    method, signal: AbortSignal.timeout(timeoutMs),
    headers: { ...authHeaders(token), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  })
  if (!res.ok) throw new HttpError(res.status, `worker ${address} answered ${res.status} to ${method} ${path}: ${(await res.text()).slice(0, 500)}`)
  return res
}

export class WorkerClient {
  constructor(private readonly token: string | undefined) {}

  async list(address: string, req: ListRequest): Promise<ListAnswer> {
    try {
      return await (await call(this.token, address, 'POST', '/inputs/list', req)).json() as ListAnswer
    } catch (e) {
      throw new ApiError('NO_WORKERS', `could not list the inputs on worker ${address}: ${(e as Error).message}`, {}, e)
    }
  }
  async clearOutputs(address: string, paths: string[], olderThanMs?: number): Promise<void> {
    await call(this.token, address, 'POST', '/outputs/clear', olderThanMs === undefined ? { paths } : { paths, older_than_ms: Math.max(0, Math.floor(olderThanMs)) })
  }
  /** `spec`: a TaskSpec, or its JSON text. */
  async launch(address: string, spec: TaskSpec | string): Promise<void> { await call(this.token, address, 'POST', '/tasks', spec, LAUNCH_TIMEOUT_MS) }
  /** `specs`: TaskSpecs, or their JSON texts. */
  async launchBatch(address: string, specs: (TaskSpec | string)[]): Promise<TaskBatchAnswer> {
    const body = `{"tasks":[${specs.map(s => typeof s === 'string' ? s : JSON.stringify(s)).join(',')}]}`
    return await (await call(this.token, address, 'POST', '/tasks/batch', body, LAUNCH_TIMEOUT_MS)).json() as TaskBatchAnswer
  }
  /** Asks the worker to pull a committed part from the worker at `from`; answered once it is in place. */
  async replicate(address: string, file: string, from: string): Promise<void> {
    await call(this.token, address, 'POST', '/outputs/replicate', { file, from }, REPLICATE_TIMEOUT_MS)
  }
  async kill(address: string, attempt: string): Promise<void> { await call(this.token, address, 'DELETE', `/tasks/${encodeURIComponent(attempt)}`) }
  async dropJob(address: string, job: string, outputs: string[], keepOutputs: boolean): Promise<void> {
    await call(this.token, address, 'POST', `/jobs/${encodeURIComponent(job)}/drop`, { outputs, keep_outputs: keepOutputs })
  }
  async finalize(address: string, job: string, paths: string[], swaps: readonly OutputSwap[] = [], settle: FinalizeRequest['settle'] = []): Promise<void> {
    const body: FinalizeRequest = { job_id: job, paths }
    if (settle !== undefined && settle.length > 0) body.settle = settle
    if (swaps.length > 0) body.swaps = swaps.map(w => ({ path: w.path, staged: w.staged, older_than_ms: Math.floor(w.olderThanMs) }))
    await call(this.token, address, 'POST', '/outputs/finalize', body)
  }
}
