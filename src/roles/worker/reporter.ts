// Task reports to the master, one request at a time: what finishes while a report is on its way
// goes in the next request (POST /tasks/reports), so a busy master gets fewer, larger requests.
// The answer may carry the next tasks the master decided for this worker (with take_tasks): a
// worker busy with short tasks then gets them without a launch request of their own.
// Reports are retried for a while (the policy is the internal client's, api/peers.ts): losing one
// would leave the master waiting for the lease.
import type { PeerClient } from '../../api/peers'
import type { TaskReport } from '../../api/tasks'

/** Keeps one request's body well under the master's body limit (16 MiB): a report with collected
 *  values may be large by itself, and goes alone. */
const MAX_BATCH = 256
const MAX_BATCH_BYTES = 4 * 1024 * 1024

export type ReporterDeps = {
  masterUrl: string
  peers: PeerClient
  /** called once the master acknowledged (or refused) a report */
  onSettled: (attemptId: string) => void
  /** given, reports ask the master for the tasks it launches here meanwhile, and these come here
   *  (unchecked: as the master sent them) */
  onTasks?: (tasks: unknown[]) => void
  log: (msg: Record<string, unknown>) => void
}

export class Reporter {
  private readonly queue: TaskReport[] = []
  private sending: Promise<void> | null = null

  constructor(private readonly deps: ReporterDeps) {}

  add(report: TaskReport): void {
    this.queue.push(report)
    this.sending ??= this.drain()
  }

  /** Resolves when every report added so far has been sent or given up. */
  async idle(): Promise<void> {
    while (this.sending !== null) await this.sending
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.takeBatch()
      await this.send(batch)
      for (const r of batch) this.deps.onSettled(r.attempt_id)
    }
    this.sending = null
  }

  private takeBatch(): TaskReport[] {
    const batch = [this.queue.shift()!]
    let bytes = reportBytes(batch[0]!)
    while (this.queue.length > 0 && batch.length < MAX_BATCH) {
      const b = reportBytes(this.queue[0]!)
      if (bytes + b > MAX_BATCH_BYTES) break
      batch.push(this.queue.shift()!)
      bytes += b
    }
    return batch
  }

  private async send(batch: TaskReport[]): Promise<void> {
    let answer: Awaited<ReturnType<PeerClient['reports']>>
    try {
      answer = await this.deps.peers.reports(this.deps.masterUrl, batch, this.deps.onTasks !== undefined)
    } catch (e) {
      for (const r of batch) this.deps.log({ level: 'error', cause: 'report-lost', attempt: r.attempt_id, message: (e as Error).message })
      return
    }
    if (answer.ok) {
      if (answer.tasks !== undefined && answer.tasks.length > 0) this.deps.onTasks?.(answer.tasks)
      return
    }
    // A master without the batch route (an older version) takes them one by one; so does a
    // batch refused whole, so that one bad report does not take the others with it.
    if (batch.length > 1) { for (const r of batch) await this.send([r]); return }
    this.deps.log({ level: 'error', cause: 'report-refused', attempt: batch[0]!.attempt_id, status: answer.status })
  }
}

/** Roughly what a report weighs as JSON, in UTF-8 bytes (as the body limit counts): its collected
 *  values are all that can be large. */
function reportBytes(r: TaskReport): number {
  let n = 1024
  for (const s of r.sinks) if (s.values !== undefined) n += Buffer.byteLength(JSON.stringify(s.values), 'utf8')
  return n
}
