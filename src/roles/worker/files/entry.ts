// Entry of the worker's file thread (a Bun Worker): file work whose cost grows with user data
// (listing a glob of 100 000 files, clearing or dropping outputs, removing a job's shuffle folders)
// runs here, never on the main thread, which must keep beating and serving the shuffle.
import { rmSync } from 'node:fs'
import { answerListing, clearOutputs, dropOutputs, finalizeOutputs } from '../listing'
import { removeEmptyUpTo, swapOutput } from '../output-swap'
import { markSettled, removeStrayParts } from '../output-settle'
import type { FileRequest } from './work'

declare const self: Worker

function handle(r: FileRequest): unknown {
  switch (r.op) {
    // As JSON text: a listing of 100 000 files is cloned to the main thread as one string, not as
    // 100 000 objects, and the main thread sends it as it is.
    case 'list': return JSON.stringify(answerListing(r.dataDir, r.req, r.own))
    case 'clear': clearOutputs(r.dataDir, r.paths, r.olderThanMs, r.own); return null
    case 'drop-outputs':
      dropOutputs(r.dataDir, r.paths, r.keep, r.own)
      // An overwriting job's parts were staged in OUTPUT/_temporary/JOB: once they are gone, so are
      // the folders the job made for them, if nothing else is in them (the output did not exist).
      for (const p of r.paths) if (p.includes('/_temporary/')) removeEmptyUpTo(r.dataDir, p.slice(0, p.indexOf('/_temporary/')))
      return null
    case 'remove': rmSync(r.path, { recursive: true, force: true }); return null
    case 'finalize':
      // Stray copies first: a swap must not move one in.
      for (const o of r.settle) removeStrayParts(r.dataDir, o, r.own)
      for (const sw of r.swaps) swapOutput(r.dataDir, sw.path, sw.staged, sw.older_than_ms, r.own)
      for (const o of r.settle) markSettled(r.dataDir, r.jobId, o, r.own)
      // _SUCCESS last (finalizeOutputs): readers that wait for it see every part.
      finalizeOutputs(r.dataDir, r.paths, r.own, r.jobId)
      return null
  }
}

self.onmessage = (e: MessageEvent<{ id: number; r: FileRequest }>) => {
  try {
    self.postMessage({ id: e.data.id, ok: true, value: handle(e.data.r) })
  } catch (err) {
    const x = err as Error & { code?: string }
    self.postMessage({ id: e.data.id, ok: false, message: x.message, code: x.code })
  }
}
