// Entry of a task thread (a Bun Worker): all record work runs here, never on the worker's main
// thread, so a slow or looping task cannot delay heartbeats or the shuffle service. A thread runs
// the tasks of one job only (the main thread replaces it before another job's task), so no job
// sees globals another job's code changed.
import { runTask } from './run'
import type { ThreadRequest, ThreadResult } from '../thread-protocol'

declare const self: Worker

self.onmessage = async (e: MessageEvent<ThreadRequest>) => {
  const result: ThreadResult = await runTask(e.data.spec, e.data.env, e.data.lane)
  // A block kept in memory moves to the main thread without a copy.
  const memory = result.blocks.flatMap(b => b.cache?.memory === undefined ? [] : [b.cache.memory.buffer as ArrayBuffer])
  self.postMessage(result, memory)
}
