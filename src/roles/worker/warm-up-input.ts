// The input of a task thread's warm-up (task/warm-up.ts): a small file the worker writes once in
// its own work dir at start-up. It does not run the warm-up itself.
//
// The folder starts with "." and no job's or dataset's folder can (layout.ts pathName never yields
// a leading "."), so no job's end or a new incarnation removes it; the next start of the worker
// renames the whole work dir aside with it.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const WARM_UP_FOLDER = '.warm-up'
export const WARM_UP_FILE = 'lines.txt'
/** A few short lines: enough for every step of a read (cut, decode, push), small enough to cost
 *  nothing to read. */
export const WARM_UP_TEXT = 'warm up\nthe\ntask thread\n'

export const warmUpDir = (workDir: string): string => join(workDir, WARM_UP_FOLDER)

export function writeWarmUpInput(workDir: string): void {
  mkdirSync(warmUpDir(workDir), { recursive: true })
  writeFileSync(join(warmUpDir(workDir), WARM_UP_FILE), WARM_UP_TEXT)
}
