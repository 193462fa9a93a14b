// The data service's file side (CONTRACT section 2, "/shuffle_data"): committed output parts
// served to peers, and a part pulled from a peer onto this disk (a replica). Only part files of an
// output folder a job may write are served or written: never the work dir, the state db, or any
// other file under the data dir.
import { mkdirSync, realpathSync, renameSync, rmSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { ApiError } from '../../api/errors'
import type { PeerClient } from '../../api/peers'
import { checkOutputFolder, type Reserved } from './listing'

const PART = /^part-\d+$/

/** The absolute path of a part file a peer may read or write, or an ApiError saying why not. */
export function partPath(dataDir: string, file: string, own: readonly Reserved[]): string {
  const clean = normalize(file)
  const name = clean.slice(clean.lastIndexOf('/') + 1)
  if (clean.startsWith('/') || clean.startsWith('..') || !clean.includes('/') || !PART.test(name)) {
    throw new ApiError('NOT_FOUND', `"${file}" is not an output part file (FOLDER/part-N relative to the data dir)`, { file })
  }
  // The folder is judged on its real path: a link never leads out of the data dir or into the work dir.
  checkOutputFolder(dataDir, dirname(clean), own)
  return join(realpathSync(dataDir), clean)
}

/** Pulls `file` from the worker at `from` and puts it in place here: written aside in the same
 *  folder, then renamed, so a reader never sees part of it and a failed copy leaves nothing. */
export async function pullPart(dataDir: string, file: string, from: string, peers: PeerClient, own: readonly Reserved[]): Promise<number> {
  const target = partPath(dataDir, file, own)
  mkdirSync(dirname(target), { recursive: true })
  const tmp = join(dirname(target), `.replica-${process.pid}-${crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36)}`)
  const writer = Bun.file(tmp).writer({ highWaterMark: 1 << 20 })
  let bytes = 0
  try {
    for await (const chunk of peers.outputPart(from, file)) { writer.write(chunk); bytes += chunk.length }
    await writer.end()
    partPath(dataDir, file, own)   // judged again: a link made meanwhile is not written through
    renameSync(tmp, target)
    return bytes
  } catch (e) {
    try { await writer.end() } catch { /* already closed */ }
    rmSync(tmp, { force: true })
    throw e
  }
}
