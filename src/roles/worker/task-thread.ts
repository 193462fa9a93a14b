// Entry of a task thread (a Bun Worker): all record work runs here, never on the worker's main
// thread, so a slow or looping task cannot delay heartbeats or the shuffle service.
import { runTask } from './task-run'
import type { ThreadRequest, ThreadResult } from './thread-protocol'

declare const self: Worker

self.onmessage = async (e: MessageEvent<ThreadRequest>) => {
  const result: ThreadResult = await runTask(e.data.spec, e.data.env)
  self.postMessage(result)
}
