// The executor pool: one Bun Worker per slot, each running one task at a time. A killed task's
// thread is terminated and replaced, so a UDF stuck in a loop costs a thread, never the worker.
import type { TaskSpec } from '../../api/tasks'
import type { ThreadEnv, ThreadRequest, ThreadResult } from './thread-protocol'

type Slot = { thread: Worker; running: TaskSpec | null }

const SMALL_HEAP_BELOW_BYTES = 256 * 1024 * 1024

// Inside the compiled binary, build.ts embeds the thread entry under the entrypoints' common root
// (src/), so its path is fixed there; from source it sits beside this file.
const THREAD_ENTRY = import.meta.path.startsWith('/$bunfs/')
  ? '/$bunfs/root/roles/worker/task-thread.ts'
  : new URL('./task-thread.ts', import.meta.url).href

export class ExecutorPool {
  private readonly slots: Slot[] = []
  private readonly queue: TaskSpec[] = []

  constructor(size: number, private readonly env: ThreadEnv, private readonly onDone: (spec: TaskSpec, r: ThreadResult) => void) {
    for (let i = 0; i < size; i++) this.slots.push(this.newSlot())
  }

  get size(): number { return this.slots.length }
  get active(): number { return this.slots.filter(s => s.running !== null).length + this.queue.length }
  runningAttempts(): string[] {
    return [...this.slots.flatMap(s => s.running ? [s.running.attempt_id] : []), ...this.queue.map(q => q.attempt_id)]
  }

  submit(spec: TaskSpec): void {
    this.queue.push(spec)
    this.pump()
  }

  /** Stops an attempt wherever it is; returns false when it is not here. */
  kill(attemptId: string): boolean {
    const q = this.queue.findIndex(s => s.attempt_id === attemptId)
    if (q >= 0) { this.queue.splice(q, 1); return true }
    const i = this.slots.findIndex(s => s.running?.attempt_id === attemptId)
    if (i < 0) return false
    this.slots[i]!.thread.terminate()
    this.slots[i] = this.newSlot()
    this.pump()
    return true
  }

  /** Terminates every running task (their threads are replaced) and reports each as failed with
   *  the reason: the last resort against a task that allocates without bound. */
  failRunning(message: string): string[] {
    const failed: string[] = []
    for (let i = 0; i < this.slots.length; i++) {
      const spec = this.slots[i]!.running
      if (spec === null) continue
      this.slots[i]!.thread.terminate()
      this.slots[i] = this.newSlot()
      failed.push(spec.attempt_id)
      this.onDone(spec, failedResult(spec, message))
    }
    this.pump()
    return failed
  }

  killJob(jobId: string): string[] {
    const ids = this.runningAttempts().filter(a => a.startsWith(`${jobId}:`))
    for (const a of ids) this.kill(a)
    return ids
  }

  stop(): void {
    for (const s of this.slots) s.thread.terminate()
    this.queue.length = 0
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.running !== null) continue
      const spec = this.queue.shift()
      if (spec === undefined) return
      slot.running = spec
      const msg: ThreadRequest = { kind: 'run', spec, env: this.env }
      slot.thread.postMessage(msg)
    }
  }

  private newSlot(): Slot {
    // A small budget asks for JSC's small heap: it collects sooner, so the resident size follows
    // the budget instead of the machine's memory.
    const thread = new Worker(THREAD_ENTRY, { smol: this.env.spillAtBytes < SMALL_HEAP_BELOW_BYTES })
    const slot: Slot = { thread, running: null }
    thread.onmessage = (e: MessageEvent<ThreadResult>) => {
      const spec = slot.running
      slot.running = null
      if (spec !== null) this.onDone(spec, e.data)
      this.pump()
    }
    // An error that escaped the task (a thread crash) fails the attempt and replaces the thread.
    thread.onerror = (e: ErrorEvent) => {
      const spec = slot.running
      const i = this.slots.indexOf(slot)
      thread.terminate()
      if (i >= 0) this.slots[i] = this.newSlot()
      if (spec !== null) this.onDone(spec, failedResult(spec, `the task thread crashed: ${e.message}`))
      this.pump()
    }
    return slot
  }
}

function failedResult(spec: TaskSpec, message: string): ThreadResult {
  return {
    attempt_id: spec.attempt_id, state: 'FAILED', blocks: [], sinks: [],
    metrics: { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 },
    failure: { reason: 'task-error', message },
  }
}
