// Entry of a task thread (a Bun Worker): all record work runs here, never on the worker's main
// thread, so a slow or looping task cannot delay heartbeats or the shuffle service. A thread runs
// the tasks of one job only (the main thread replaces it before another job's task), so no job
// sees globals another job's code changed.
import { runTask } from './run'
import { warmUp } from './warm-up'
import type { ThreadReply, ThreadRequest } from '../thread-protocol'

declare const self: Worker

// One request at a time, in the order sent: a task sent while the warm-up still runs waits for it
// here (the two would share the thread's budget lane, and the warm-up's release would free the
// task's reservations).
let previous: Promise<void> = Promise.resolve()
/** requests received and not yet done, the one running included */
let pending = 0

self.onmessage = (e: MessageEvent<ThreadRequest>) => {
  const req = e.data
  pending++
  previous = previous.then(() => handle(req)).finally(() => { pending-- }).catch((err: unknown) => {
    // Escaped the task's own failure handling: thrown again outside the chain, so the main thread
    // hears of it as the thread's error event (a crash), and requests after it still run.
    setTimeout(() => { throw err })
  })
}

async function handle(req: ThreadRequest): Promise<void> {
  if (req.kind === 'warm-up') {
    const t0 = performance.now()
    // A task sent meanwhile cuts the warm-up short: it came to run, not to wait.
    const outcome = await warmUp(req.env, req.lane, () => pending > 1).catch((err: unknown) => ({ tasks: 0, failure: (err as Error).message ?? String(err) }))
    const reply: ThreadReply = { kind: 'warmed', ms: performance.now() - t0, tasks: outcome.tasks, ...(outcome.failure === undefined ? {} : { failure: outcome.failure }) }
    self.postMessage(reply)
    return
  }
  const result = await runTask(req.spec, req.env, req.lane)
  // A block kept in memory moves to the main thread without a copy.
  const memory = result.blocks.flatMap(b => b.cache?.memory === undefined ? [] : [b.cache.memory.buffer as ArrayBuffer])
  const reply: ThreadReply = { kind: 'result', result }
  self.postMessage(reply, memory)
}
