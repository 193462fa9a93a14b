// Whether a task runs code of the job's own: a function given as source (`fn`, a sort's `key`) in
// any node of its stage. A thread that has run only the engine's own operators (read_text, words,
// count_by_value, count, write_text, ...) holds nothing a job wrote: it may run another job's task,
// as a warmed-up thread does (task/warm-up.ts). Pure; it decides nothing about threads itself.
import type { TaskSpec } from '../../api/tasks'

const CODE_FIELDS = ['fn', 'key']

export function runsUserCode(spec: TaskSpec): boolean {
  // A sort's sample stage computes the sort's keys, with its key function if it has one.
  if (spec.stage.sample_of !== undefined) return true
  return holdsCode(spec.stage)
}

/** Any object in `v` with a string in a code field: the whole stage is searched, not a list of
 *  the places a node sits today, so that a node kind added later is not missed. */
function holdsCode(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(holdsCode)
  if (v === null || typeof v !== 'object') return false
  const o = v as Record<string, unknown>
  for (const f of CODE_FIELDS) if (typeof o[f] === 'string') return true
  for (const k in o) if (holdsCode(o[k])) return true
  return false
}
