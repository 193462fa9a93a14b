// Typed client of the master's API, used by the CLI, the local cluster and the tests.
// Answers are checked against the same schemas the master serves; a mismatch is a
// PROTOCOL_MISMATCH error rather than a confusing crash later.
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { TSchema, Static } from '@sinclair/typebox'
import { t } from 'elysia'
import { DatasetInfo } from './datasets'
import { WorkerInfo } from './heartbeat'
import { MAX_PAGE, NEXT_CURSOR } from './paging'
import { JobAccepted, JobResult, JobStatus, JobSummary, TaskInfo, FINAL_JOB_STATES, type JobRequest, type JobState } from './jobs'

export class ClientError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) { super(message) }
}

const checkers = new Map<TSchema, ReturnType<typeof TypeCompiler.Compile>>()
function check<S extends TSchema>(schema: S, value: unknown, what: string): Static<S> {
  let c = checkers.get(schema)
  if (c === undefined) checkers.set(schema, c = TypeCompiler.Compile(schema))
  if (!c.Check(value)) {
    const first = [...c.Errors(value)][0]
    throw new ClientError('PROTOCOL_MISMATCH', `unexpected answer for ${what}: ${first?.path ?? ''} ${first?.message ?? ''}`, 0)
  }
  return value as Static<S>
}

/** How long one request may take before the client gives up (a master that accepts the connection
 *  and never answers would otherwise hang the CLI, the SDK and every wait loop forever). A submit
 *  asks every disk for its listing, so this is generous. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000

export class MasterClient {
  constructor(readonly base: string, private readonly token?: string,
    private readonly requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS) {}

  submit = async (job: JobRequest): Promise<string> =>
    check(JobAccepted, await this.call('POST', '/jobs', job), 'POST /jobs').job_id
  status = async (id: string) => check(JobStatus, await this.call('GET', `/jobs/${id}`), 'GET /jobs/:id')
  /** Every job the master keeps, newest first, page after page. */
  jobs = async (state?: JobState) => this.everyPage(t.Array(JobSummary), '/jobs', state ? { state } : {}, 'before', 'GET /jobs')
  /** Every attempt of a job, page after page. */
  tasks = async (id: string) => this.everyPage(t.Array(TaskInfo), `/jobs/${id}/tasks`, {}, 'after', 'GET /jobs/:id/tasks')
  result = async (id: string) => check(JobResult, await this.call('GET', `/jobs/${id}/result`), 'GET /jobs/:id/result')
  cancel = async (id: string) => check(JobStatus, await this.call('DELETE', `/jobs/${id}`), 'DELETE /jobs/:id')
  workers = async () => check(t.Array(WorkerInfo), await this.call('GET', '/workers'), 'GET /workers')
  datasets = async () => check(t.Array(DatasetInfo), await this.call('GET', '/datasets'), 'GET /datasets')
  deleteDataset = async (name: string) => { await this.call('DELETE', `/datasets/${encodeURIComponent(name)}`) }

  /** Polls until the job has finished or the time is up; calls onStatus with each status seen. */
  async waitDone(id: string, o: { timeoutMs: number; pollMs?: number; onStatus?: (s: JobStatus) => void }): Promise<JobStatus> {
    const deadline = Date.now() + o.timeoutMs
    for (;;) {
      const s = await this.status(id)
      o.onStatus?.(s)
      if (FINAL_JOB_STATES.includes(s.state)) return s
      if (Date.now() > deadline) throw new ClientError('TIMEOUT', `job ${id} still ${s.state} after ${o.timeoutMs} ms`, 0)
      // setTimeout, not Bun.sleep: the SDK runs this under Node too.
      await new Promise(resolve => setTimeout(resolve, o.pollMs ?? 100))
    }
  }

  /** Follows X-Next-Cursor to the end of a paged list (bounded: a cursor that does not move is an error). */
  private async everyPage<S extends TSchema>(schema: S, path: string, query: Record<string, string>, cursorParam: string, what: string): Promise<Static<S>> {
    const all: unknown[] = []
    let cursor: string | null = null
    for (;;) {
      const q = new URLSearchParams({ ...query, limit: String(MAX_PAGE), ...(cursor === null ? {} : { [cursorParam]: cursor }) })
      const { json, headers } = await this.exchange('GET', `${path}?${q}`)
      all.push(...check(schema, json, what) as unknown[])
      const next = headers.get(NEXT_CURSOR)
      if (next === null) return all as Static<S>
      if (next === cursor) throw new ClientError('PROTOCOL_MISMATCH', `${what}: the next-page cursor did not move (${next})`, 0)
      cursor = next
    }
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    return (await this.exchange(method, path, body)).json
  }

  private async exchange(method: string, path: string, body?: unknown): Promise<{ json: unknown; headers: Headers }> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    // One deadline for the whole exchange, the body included: a master can stall mid-answer too.
    const signal = AbortSignal.timeout(this.requestTimeoutMs)
    const timedOut = () => new ClientError('TIMEOUT', `${method} ${path}: the master at ${this.base} did not answer within ${this.requestTimeoutMs} ms`, 0)
    let res: Response
    try {
      res = await fetch(this.base + path, { method, headers, signal, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    } catch (e) {
      if (signal.aborted) throw timedOut()
      throw new ClientError('UNREACHABLE', `cannot reach the master at ${this.base}: ${(e as Error).message}`, 0)
    }
    let text: string
    try { text = await res.text() } catch (e) {
      if (signal.aborted) throw timedOut()
      throw new ClientError('UNREACHABLE', `the master at ${this.base} broke off its answer: ${(e as Error).message}`, 0)
    }
    let json: unknown
    try { json = JSON.parse(text) } catch { throw new ClientError('PROTOCOL_MISMATCH', `${method} ${path} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`, res.status) }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } }).error
      throw new ClientError(err?.code ?? 'HTTP_ERROR', err?.message ?? `${method} ${path} answered ${res.status}`, res.status)
    }
    return { json, headers: res.headers }
  }
}
