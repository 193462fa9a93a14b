// An output as the master's catalog has it on this disk (FinalizeRequest.settle), run on the file
// thread at the end of a job and when a worker returns from an absence: part files that do not
// count here go (a copy committed by an attempt whose worker was then lost, and run again
// elsewhere), and _SUCCESS says which parts this disk holds and how many the output has.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { OutputSettle } from '../../api/tasks'
import { checkOutputFolder, type Reserved } from './listing'
import { removeEmptyUpTo } from './output-swap'
import { pathName } from './layout'

const PART = /^part-\d+$/

/** Before any swap: the part files of `dir` not in `keep` go. */
export function removeStrayParts(dataDir: string, o: OutputSettle, own: readonly Reserved[]): void {
  checkOutputFolder(dataDir, o.dir, own)
  const dir = join(dataDir, o.dir)
  if (!existsSync(dir)) return
  const keep = new Set(o.keep)
  for (const name of readdirSync(dir)) if (PART.test(name) && !keep.has(name)) rmSync(join(dir, name), { force: true })
}

/** After the swaps: _SUCCESS (last, so that a reader that waits for it sees every part), or, on a
 *  disk that holds no part, the folders a stray left, if they are empty. */
export function markSettled(dataDir: string, jobId: string, o: OutputSettle, own: readonly Reserved[]): void {
  checkOutputFolder(dataDir, o.path, own)
  const dir = join(dataDir, o.path)
  if (o.success === undefined) {
    // The job's own temporary folders (its attempts', and its staged parts) go: a worker lost
    // mid-write leaves them, and the job that would have removed them has ended. Another job's stay.
    const job = o.job_id ?? jobId
    const temporary = join(dir, '_temporary')
    if (job !== '' && existsSync(temporary)) {
      for (const name of readdirSync(temporary)) {
        if (name === job || name.startsWith(pathName(`${job}:`))) rmSync(join(temporary, name), { recursive: true, force: true })
      }
    }
    if (o.dir !== o.path) removeEmptyUpTo(dataDir, o.dir)
    removeEmptyUpTo(dataDir, o.path)
    return
  }
  mkdirSync(dir, { recursive: true })
  rmSync(join(dir, '_temporary'), { recursive: true, force: true })
  // Written aside and renamed: a reader never sees half of it, and a link named _SUCCESS is
  // replaced, never written through.
  const tmp = join(dir, `.SUCCESS.${process.pid}.${Date.now()}`)
  writeFileSync(tmp, successText(o.job_id ?? jobId, o.success.parts, o.success.total), { flag: 'wx' })
  renameSync(tmp, join(dir, '_SUCCESS'))
}

/** `_SUCCESS`: which job wrote the output, which parts this disk holds, how many there are. */
export const successText = (jobId: string, parts: readonly number[], total: number): string =>
  `${JSON.stringify({ job_id: jobId, parts, total })}\n`

/** The job a _SUCCESS names (its whole text, as earlier versions wrote it, or its job_id). */
export function successJob(text: string): string {
  try {
    const v = JSON.parse(text) as { job_id?: unknown }
    if (typeof v?.job_id === 'string') return v.job_id
  } catch { /* the plain form */ }
  return text
}
