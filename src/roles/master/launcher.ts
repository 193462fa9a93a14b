// Task launches to workers, at most one request in flight per worker: tasks decided for a worker
// while its previous launch is on its way go together in the next request (POST /tasks/batch). A
// busy master then makes fewer, larger requests, and a slow worker holds up only its own launches.
// It decides nothing: each task's outcome goes back to the scheduler as before.
import type { TaskSpec } from '../../api/tasks'
import { HttpError, refused, type WorkerClient } from './worker-client'

export type LaunchOutcome = { ok: true } | { ok: false; message: string; unreachable: boolean }

type Waiting = { spec: TaskSpec; done: (o: LaunchOutcome) => void }

/** Keeps one request's body well under the body limit, even for reduce tasks with many inputs. */
const MAX_BATCH = 64

export class Launcher {
  /** per worker address, while a request is in flight there: the tasks waiting for it to end */
  private readonly lanes = new Map<string, Waiting[]>()

  constructor(private readonly client: WorkerClient) {}

  launch(address: string, spec: TaskSpec): Promise<LaunchOutcome> {
    return new Promise(done => {
      const waiting = this.lanes.get(address)
      if (waiting !== undefined) { waiting.push({ spec, done }); return }
      this.lanes.set(address, [])
      void this.send(address, [{ spec, done }])
    })
  }

  private async send(address: string, batch: Waiting[]): Promise<void> {
    let answered = true
    try {
      if (batch.length === 1) {
        await this.client.launch(address, batch[0]!.spec)
        batch[0]!.done({ ok: true })
      } else {
        const answer = await this.client.launchBatch(address, batch.map(w => w.spec))
        const results = new Map(answer.results.map(r => [r.attempt_id, r]))
        for (const w of batch) {
          const r = results.get(w.spec.attempt_id)
          w.done(r?.accepted === true ? { ok: true } : { ok: false, message: r?.error?.message ?? `worker ${address} did not answer for this task`, unreachable: false })
        }
      }
    } catch (e) {
      answered = e instanceof HttpError
      for (const w of batch) w.done({ ok: false, message: (e as Error).message, unreachable: refused(e) })
    }
    const waiting = this.lanes.get(address) ?? []
    // No answer at all (refused, timed out): the worker is gone or hung, and what waits for it
    // would only fail the same way, one timeout after another.
    if (!answered) for (const w of waiting.splice(0)) w.done({ ok: false, message: `worker ${address} did not answer an earlier launch`, unreachable: false })
    if (waiting.length === 0) { this.lanes.delete(address); return }
    void this.send(address, waiting.splice(0, MAX_BATCH))
  }
}
