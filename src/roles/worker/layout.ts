// Where a worker keeps its files in its work dir. Job, shuffle and attempt ids come from the
// master, and a shuffle id is a node id, which is user text: each becomes one path component by
// an escaping that is one-to-one ("a/0" and "a_0" stay apart) and never yields "." or "..", and
// user-named folders live under their own parent, so no node id can be an internal folder's name.
//
//   WORK/<worker>/<job>/shuffle/<shuffle>/<attempt>-<n>.run   map output segments (served to peers)
//   WORK/<worker>/<job>/attempts/<attempt>/...                 one attempt's scratch (reduce spills),
//                                                              removed when the attempt ends
import { join } from 'node:path'

/** One path component for any string: [A-Za-z0-9-] as they are, every other UTF-8 byte as _XX. */
export function pathName(s: string): string {
  let out = ''
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b)
    out += /[A-Za-z0-9-]/.test(c) ? c : `_${b.toString(16).padStart(2, '0')}`
  }
  // "" is not a folder name; an escaped name never starts with "." and "_" marks escapes only.
  return out === '' ? '_' : out
}

export const jobDir = (workDir: string, job: string): string => join(workDir, pathName(job))
export const shuffleDir = (workDir: string, job: string, shuffle: string): string => join(jobDir(workDir, job), 'shuffle', pathName(shuffle))
export const attemptDir = (workDir: string, job: string, attempt: string): string => join(jobDir(workDir, job), 'attempts', pathName(attempt))
