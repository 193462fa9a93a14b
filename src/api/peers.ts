// The worker's client for every internal call it makes: heartbeats, task reports and commit
// questions to the master, shuffle fetches from peer workers. Each call's time limits, retry
// policy and error kind live here, in one place, instead of at each fetch site.
//
// Every request has a connect limit (until the answer's headers) and an idle limit (no byte of
// the body for that long): a peer that is SIGSTOPped, or a master that accepts and never answers,
// costs a bounded wait, never a slot held for minutes.
import { authHeaders } from './auth'
import type { Heartbeat, HeartbeatAck } from './heartbeat'
import type { CommitAnswer, ShuffleFetch, TaskReport } from './tasks'
import type { Static } from 'elysia'

/** How a call failed. `unreachable`: nothing listens there (the process is gone); `timeout`: no
 *  answer, or no byte for the idle limit; `refused`: a 4xx, asking again gives the same answer;
 *  `server`: a 5xx; `broken`: the connection broke off mid-answer. */
export type PeerErrorKind = 'unreachable' | 'timeout' | 'refused' | 'server' | 'broken'

export class PeerError extends Error {
  constructor(readonly kind: PeerErrorKind, readonly peer: string, message: string, readonly status?: number) { super(message) }
  /** worth asking again: the peer may be back (a restart) or less busy */
  get transient(): boolean { return this.kind !== 'refused' }
}

export type Retry = { attempts: number; totalMs: number; firstDelayMs: number; maxDelayMs: number }
export type CallPolicy = { connectMs: number; idleMs: number; retry: Retry | null }

/** The policies, one per call. */
export const POLICIES = {
  /** heartbeats are not retried: the next beat is the retry. The limit follows the interval. */
  heartbeat: (intervalMs: number): CallPolicy => ({ connectMs: Math.max(1_000, intervalMs), idleMs: Math.max(1_000, intervalMs), retry: null }),
  /** a lost report leaves the master waiting for a lease: asked again for about a minute, covering
   *  a master restart */
  report: { connectMs: 30_000, idleMs: 30_000, retry: { attempts: 30, totalMs: 60_000, firstDelayMs: 100, maxDelayMs: 2_000 } },
  /** the commit question is idempotent (the master stores its answer before giving it), so it is
   *  retried like a report; an attempt that still cannot ask is interrupted, not at fault */
  commit: { connectMs: 10_000, idleMs: 10_000, retry: { attempts: 30, totalMs: 60_000, firstDelayMs: 100, maxDelayMs: 4_000 } },
  /** a shuffle fetch that failed before its first byte (no answer within the limit, a 5xx) is asked
   *  again twice, as Spark's shuffle client does: a peer that is alive but starved of CPU for a
   *  moment would otherwise cost every map output it holds, recomputed. A peer where nothing listens
   *  (its process is gone) and a fetch that broke off mid-answer are not asked again: those are the
   *  master's to judge (it re-runs the map outputs), and the reduce task fails with fetch-failed
   *  naming the peer. */
  shuffle: { connectMs: 10_000, idleMs: 30_000, retry: { attempts: 3, totalMs: 40_000, firstDelayMs: 1_000, maxDelayMs: 4_000 } } satisfies CallPolicy,
} as const

/** A shuffle call is asked again unless nothing listens at the peer: its process is gone, and the
 *  master, not a wait, recovers its outputs. */
const notGone = (e: PeerError): boolean => e.kind !== 'unreachable'

export type Policies = { report: CallPolicy; commit: CallPolicy; shuffle: CallPolicy }

export class PeerClient {
  private readonly p: Policies

  /** `policies`: other limits, for tests that cannot wait the real ones out */
  constructor(private readonly token: string | undefined, policies: Partial<Policies> = {}) {
    this.p = { report: POLICIES.report, commit: POLICIES.commit, shuffle: POLICIES.shuffle, ...policies }
  }

  /** One heartbeat; throws PeerError. */
  async heartbeat(masterUrl: string, hb: Heartbeat, intervalMs: number): Promise<HeartbeatAck> {
    const res = await this.call(masterUrl, `${masterUrl}/heartbeat`, hb, POLICIES.heartbeat(intervalMs))
    return (await readJson(res, masterUrl, POLICIES.heartbeat(intervalMs))) as HeartbeatAck
  }

  /**
   * Sends reports (one, or a batch); asked again on transient failures within the policy.
   * Resolves 'ok', or 'refused' with the status of a 4xx; throws PeerError when it gave up.
   */
  async reports(masterUrl: string, batch: readonly TaskReport[], takeTasks = false): Promise<{ ok: true; tasks?: unknown[] } | { ok: false; status: number }> {
    const [path, body] = batch.length === 1 && !takeTasks ? ['/tasks/report', batch[0]]
      : ['/tasks/reports', takeTasks ? { reports: batch, take_tasks: true } : { reports: batch }]
    try {
      // With takeTasks, the answer carries the tasks the master launched here meanwhile (ReportsAnswer).
      const answer = await this.retried(this.p.report, async () => {
        const res = await this.call(masterUrl, `${masterUrl}${path}`, body, this.p.report)
        if (!takeTasks) { await drain(res, masterUrl, this.p.report); return {} }
        return (await readJson(res, masterUrl, this.p.report)) as { tasks?: unknown }
      })
      return Array.isArray(answer.tasks) ? { ok: true, tasks: answer.tasks } : { ok: true }
    } catch (e) {
      if (e instanceof PeerError && e.kind === 'refused') return { ok: false, status: e.status ?? 400 }
      throw e
    }
  }

  /** May this attempt commit its output? Asked again while the master is unreachable (say it is
   *  restarting); throws PeerError when it could not be asked within the policy. */
  async commit(masterUrl: string, attemptId: string, workerId: string): Promise<boolean> {
    return this.retried(this.p.commit, async () => {
      const res = await this.call(masterUrl, `${masterUrl}/tasks/commit`, { attempt_id: attemptId, worker_id: workerId }, this.p.commit)
      return ((await readJson(res, masterUrl, this.p.commit)) as Static<typeof CommitAnswer>).commit === true
    })
  }

  /** Streams one shuffle fetch's body; the idle limit holds between chunks. Throws PeerError. */
  async *shuffle(address: string, peer: string, req: ShuffleFetch): AsyncGenerator<Uint8Array> {
    const res = await this.retried(this.p.shuffle, () => this.call(peer, `http://${address}/shuffle_data/fetch`, req, this.p.shuffle), notGone)
    yield* body(res, peer, this.p.shuffle)
  }

  /** Streams a committed output part from the peer's data service (a replica, or a remote read). */
  async *outputPart(address: string, file: string): AsyncGenerator<Uint8Array> {
    const url = `http://${address}/shuffle_data/output/${file.split('/').map(encodeURIComponent).join('/')}`
    const res = await this.retried(this.p.shuffle, () => this.call(address, url, undefined, this.p.shuffle), notGone)
    yield* body(res, address, this.p.shuffle)
  }

  /** One request with the policy's limits (a GET without `payload`); a non-2xx answer becomes a
   *  PeerError with its text. */
  private async call(peer: string, url: string, payload: unknown, policy: CallPolicy): Promise<Response & { abort(): void }> {
    const ctl = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; ctl.abort() }, policy.connectMs)
    let res: Response
    try {
      res = await fetch(url, payload === undefined
        ? { method: 'GET', headers: authHeaders(this.token), signal: ctl.signal }
        : { method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(this.token) }, body: JSON.stringify(payload), signal: ctl.signal })
    } catch (e) {
      if (timedOut) throw new PeerError('timeout', peer, `${peer} did not answer ${url} within ${policy.connectMs} ms`)
      const refused = (e as { code?: unknown }).code === 'ECONNREFUSED' || (e as { code?: unknown }).code === 'ConnectionRefused'
      throw new PeerError(refused ? 'unreachable' : 'broken', peer, `cannot reach ${peer} (${url}): ${(e as Error).message}`)
    } finally {
      clearTimeout(timer)
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '')
      throw new PeerError(res.status < 500 ? 'refused' : 'server', peer, `${peer} answered ${res.status} to ${url}: ${text.slice(0, 500)}`, res.status)
    }
    return Object.assign(res, { abort: () => ctl.abort() })
  }

  /** `once` asked again while it fails transiently (and `worthIt` agrees), within the policy. */
  private async retried<T>(policy: CallPolicy, once: () => Promise<T>, worthIt: (e: PeerError) => boolean = () => true): Promise<T> {
    const r = policy.retry
    const start = performance.now()
    for (let attempt = 0; ; attempt++) {
      try {
        return await once()
      } catch (e) {
        if (!(e instanceof PeerError) || !e.transient || !worthIt(e) || r === null) throw e
        const delay = Math.min(r.maxDelayMs, r.firstDelayMs * 2 ** attempt)
        if (attempt + 1 >= r.attempts || performance.now() - start + delay > r.totalMs) throw e
        await Bun.sleep(delay)
      }
    }
  }
}

/** The body's chunks, each within the idle limit of the one before. */
async function* body(res: Response & { abort(): void }, peer: string, policy: CallPolicy): AsyncGenerator<Uint8Array> {
  if (res.body === null) return
  const reader = res.body.getReader()
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const idle = new Promise<'idle'>(r => { timer = setTimeout(() => r('idle'), policy.idleMs) })
      let next: { done: boolean; value?: Uint8Array } | 'idle'
      try {
        next = await Promise.race([reader.read(), idle])
      } catch (e) {
        throw new PeerError('broken', peer, `the answer of ${peer} broke off: ${(e as Error).message}`)
      } finally {
        clearTimeout(timer)
      }
      if (next === 'idle') {
        res.abort()
        throw new PeerError('timeout', peer, `${peer} sent nothing for ${policy.idleMs} ms`)
      }
      if (next.done || next.value === undefined) return
      yield next.value
    }
  } finally {
    // A read still pending (the idle limit passed) is given up with the lock.
    try { reader.releaseLock() } catch { /* released with the read */ }
  }
}

async function readAll(res: Response & { abort(): void }, peer: string, policy: CallPolicy): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const c of body(res, peer, policy)) parts.push(c)
  return Buffer.concat(parts)
}

async function drain(res: Response & { abort(): void }, peer: string, policy: CallPolicy): Promise<void> {
  await readAll(res, peer, policy)
}

async function readJson(res: Response & { abort(): void }, peer: string, policy: CallPolicy): Promise<unknown> {
  const bytes = await readAll(res, peer, policy)
  try {
    return JSON.parse(new TextDecoder().decode(bytes))
  } catch (e) {
    throw new PeerError('broken', peer, `${peer} answered with what is not JSON: ${(e as Error).message}`)
  }
}
