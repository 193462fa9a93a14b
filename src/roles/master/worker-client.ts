// The master's calls to workers: planning questions, task dispatch, kills and clean-up.
import type { ListAnswer, ListRequest, TaskBatchAnswer, TaskSpec } from '../../api/tasks'
import { ApiError } from '../../api/errors'
import { authHeaders } from '../../api/auth'

const TIMEOUT_MS = 10_000

/** The worker answered, with an error status: it is there, unlike when a call times out or is refused. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message) }
}

/** The peer's process is gone (nothing listens on its port): no need to wait for its lease. */
export const refused = (e: unknown): boolean => (e as { code?: unknown } | undefined)?.code === 'ECONNREFUSED'

async function call(token: string | undefined, address: string, method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(`http://${address}${path}`, {
    method, signal: AbortSignal.timeout(TIMEOUT_MS),
    headers: { ...authHeaders(token), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
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
  async launch(address: string, spec: TaskSpec): Promise<void> { await call(this.token, address, 'POST', '/tasks', spec) }
  async launchBatch(address: string, specs: TaskSpec[]): Promise<TaskBatchAnswer> {
    return await (await call(this.token, address, 'POST', '/tasks/batch', { tasks: specs })).json() as TaskBatchAnswer
  }
  async kill(address: string, attempt: string): Promise<void> { await call(this.token, address, 'DELETE', `/tasks/${encodeURIComponent(attempt)}`) }
  async dropJob(address: string, job: string, outputs: string[], keepOutputs: boolean): Promise<void> {
    await call(this.token, address, 'POST', `/jobs/${encodeURIComponent(job)}/drop`, { outputs, keep_outputs: keepOutputs })
  }
  async finalize(address: string, job: string, paths: string[]): Promise<void> { await call(this.token, address, 'POST', '/outputs/finalize', { job_id: job, paths }) }
}
