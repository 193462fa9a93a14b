// Task launches to workers, at most one request in flight per worker: tasks decided for a worker
// while its previous launch is on its way go together in the next request (POST /tasks/batch). A
// busy master then makes fewer, larger requests, and a slow worker holds up only its own launches.
// It decides nothing: each task's outcome goes back to the scheduler as before.
//
// A launch is answered within two request timeouts (LAUNCH_TIMEOUT_MS): the one it waits behind,
// and its own. The scheduler's reconcile grace (LAUNCH_GRACE_MS) is longer than that.
import type { TaskSpec } from '../../api/tasks'
import { HttpError, refused, type WorkerClient } from './worker-client'

/** `unreachable`: the worker incarnation it was for is gone (refused connection, or the worker
 *  answered that it is another incarnation). `permanent`: the worker refused the spec itself
 *  (400, 413, 422): any worker would. */
export type LaunchOutcome = { ok: true } | { ok: false; message: string; unreachable: boolean; permanent?: boolean }

type Waiting = { json: string; attempt: string; bytes: number; done: (o: LaunchOutcome) => void }

/** Tasks and bytes per request: well under the worker's body limit (MAX_BODY_BYTES), even for
 *  reduce tasks with many inputs. A larger spec goes alone. */
const MAX_BATCH = 64
const MAX_BATCH_BYTES = 4 * 1024 * 1024

/** Answers that say the spec itself is wrong or too large: retrying it, anywhere, gets the same. */
const PERMANENT_STATUS = new Set([400, 413, 422])
/** The worker is there, but is another incarnation than the task was for. */
const STALE_STATUS = 409

/** Tasks that go with the answer to a worker's report request instead of a request of their own. */
type Pickup = { json: string[]; bytes: number }

export class Launcher {
  /** per worker address, while a request is in flight there: the tasks waiting for it to end */
  private readonly lanes = new Map<string, Waiting[]>()
  /** per worker address, while its report request waits for the reports to be stored */
  private readonly pickups = new Map<string, Pickup>()

  constructor(private readonly client: WorkerClient) {}

  /**
   * Tasks launched on the worker at `address` from now until the returned function is called go in
   * the answer to its report request (which it awaits anyway), up to a batch's bounds; the function
   * returns their JSON. Such a task is taken as delivered: if the answer is lost on its way, the
   * worker's heartbeats do not list the attempt, and the master re-runs it after LAUNCH_GRACE_MS
   * (worker-events.ts reconcile), as with any launch that never arrived.
   */
  hold(address: string): () => string[] {
    const box: Pickup = { json: [], bytes: 0 }
    this.pickups.set(address, box)
    return () => {
      if (this.pickups.get(address) === box) this.pickups.delete(address)
      return box.json
    }
  }

  launch(address: string, spec: TaskSpec): Promise<LaunchOutcome> {
    const json = JSON.stringify(spec)
    const box = this.pickups.get(address)
    if (box !== undefined && box.json.length < MAX_BATCH && (box.json.length === 0 || box.bytes + json.length <= MAX_BATCH_BYTES)) {
      box.json.push(json)
      box.bytes += json.length
      return Promise.resolve({ ok: true })
    }
    return new Promise(done => {
      const w: Waiting = { json, attempt: spec.attempt_id, bytes: Buffer.byteLength(json), done }
      const waiting = this.lanes.get(address)
      if (waiting !== undefined) { waiting.push(w); return }
      this.lanes.set(address, [])
      void this.send(address, [w])
    })
  }

  private async send(address: string, batch: Waiting[]): Promise<void> {
    let answered = true
    try {
      if (batch.length === 1) {
        await this.client.launch(address, batch[0]!.json)
        batch[0]!.done({ ok: true })
      } else {
        const answer = await this.client.launchBatch(address, batch.map(w => w.json))
        const results = new Map(answer.results.map(r => [r.attempt_id, r]))
        for (const w of batch) {
          const r = results.get(w.attempt)
          w.done(r?.accepted === true ? { ok: true }
            : { ok: false, message: r?.error?.message ?? `worker ${address} did not answer for this task`, unreachable: r?.error?.code === 'STALE_INCARNATION' })
        }
      }
    } catch (e) {
      answered = e instanceof HttpError
      const status = e instanceof HttpError ? e.status : 0
      // Only a spec sent alone is known to be the one refused: a batch's tasks are retried (bounded).
      const permanent = batch.length === 1 && PERMANENT_STATUS.has(status)
      for (const w of batch) w.done({ ok: false, message: (e as Error).message, unreachable: refused(e) || status === STALE_STATUS, ...(permanent ? { permanent: true } : {}) })
    }
    const waiting = this.lanes.get(address) ?? []
    // No answer at all (refused, timed out): the worker is gone or hung, and what waits for it
    // would only fail the same way, one timeout after another.
    if (!answered) for (const w of waiting.splice(0)) w.done({ ok: false, message: `worker ${address} did not answer an earlier launch`, unreachable: false })
    if (waiting.length === 0) { this.lanes.delete(address); return }
    void this.send(address, takeBatch(waiting))
  }
}

/** The first waiting tasks, up to MAX_BATCH of them and MAX_BATCH_BYTES (at least one). */
function takeBatch(waiting: Waiting[]): Waiting[] {
  let n = 0
  let bytes = 0
  while (n < waiting.length && n < MAX_BATCH && (n === 0 || bytes + waiting[n]!.bytes <= MAX_BATCH_BYTES)) bytes += waiting[n++]!.bytes
  return waiting.splice(0, n)
}
