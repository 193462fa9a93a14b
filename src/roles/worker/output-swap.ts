// Swapping a replaced output in on this worker's disk (FinalizeRequest.swaps), run on the file
// thread. An overwriting job commits its parts aside, under OUTPUT/_temporary/JOB; the previous
// output is touched only here, once the job's every part is committed.
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, sep } from 'node:path'
import { checkOutputFolder, clearOutputs, type Reserved } from './listing'
import { successJob } from './output-settle'

/** The previous output's entries move into a trash folder, the job's committed parts move from
 *  `staged` into `path`, and the trash and `staged` go (`_SUCCESS`, naming the job, is written
 *  after, by finalizeOutputs). Markers make it safe to repeat after a crash at any point, and a
 *  worker on the same data dir as one that did it finds it done: `_SUCCESS` naming the job means done; `staged`/_MOVING means the previous
 *  output is already in the trash, so only the remaining staged parts move. The master sends swaps
 *  to one worker at a time. Where nothing of the job is staged on this disk, only files from before
 *  the job (`olderThanMs`) are removed: a newer output in `path` is never touched. */
export function swapOutput(dataDir: string, path: string, staged: string, olderThanMs: number, own: readonly Reserved[] = []): void {
  // Judged on real paths first, as every delete and rename is: a link never leads the swap out.
  checkOutputFolder(dataDir, path, own)
  checkOutputFolder(dataDir, staged, own)
  const root = realpathSync(dataDir)
  const dir = join(root, path)
  const from = join(root, staged)
  const temporary = join(dir, '_temporary')
  if (!dir.startsWith(root + sep) || !from.startsWith(temporary + sep)) return
  const job = from.slice(temporary.length + 1)
  const success = join(dir, '_SUCCESS')
  if (existsSync(success) && successJob(readFileSync(success, 'utf8')) === job) return
  const trash = join(temporary, `${job}.previous`)
  const moving = join(from, '_MOVING')
  if (!existsSync(from)) {
    // Nothing of the job here: the previous output's files go by age; a newer output stays.
    clearOutputs(dataDir, [path], olderThanMs, own)
    return
  }
  if (!existsSync(moving)) {
    mkdirSync(trash, { recursive: true })
    for (const name of readdirSync(dir)) if (name !== '_temporary') moveIfThere(join(dir, name), join(trash, name))
    writeFileSync(moving, '')
  }
  for (const name of readdirSync(from)) {
    if (name === '_MOVING' || statSync(join(from, name), { throwIfNoEntry: false })?.isFile() !== true) continue
    moveIfThere(join(from, name), join(dir, name))
  }
  rmSync(trash, { recursive: true, force: true })
  rmSync(from, { recursive: true, force: true })
  try { rmdirSync(temporary) } catch { /* not empty: another job writes here */ }
}

/** A file another worker sharing this data dir moved or removed meanwhile is not an error. */
function moveIfThere(from: string, to: string): void {
  try { renameSync(from, to) } catch (e) { if ((e as { code?: string }).code !== 'ENOENT') throw e }
}

/** Removes `path`/_temporary and then `path` if each is empty. */
export function removeEmptyUpTo(dataDir: string, path: string): void {
  const root = realpathSync(dataDir)
  const dir = join(root, path)
  if (!dir.startsWith(root + sep)) return
  for (const d of [join(dir, '_temporary'), dir]) {
    try { rmdirSync(d) } catch { /* not empty (then neither is `path`), or already gone */ }
  }
}
