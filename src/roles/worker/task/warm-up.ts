// A task thread's warm-up: before its first real task, a fresh thread runs tiny tasks of the
// engine's own through the same runTask as every task: read_text of a small file in the worker's
// work dir into count (a one-task job's whole path), and into words with a shuffle write (a map
// task's path: partitioning, combining, encoding), whose output it decodes again. JSC parses and
// compiles each function on its first call, so a thread that has run nothing spends some 10 ms
// more on its first task than on later ones; a one-task job pays that in full, since every job
// starts on a fresh thread.
//
// No user code runs here (no job's function or params). What it writes stays in the work dir, in a
// folder of its lane's own (no two live threads share a lane), removed before it answers. Its
// results go to no job: the thread answers "warmed", never a task result.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TaskSpec } from '../../../api/tasks'
import { decodeFrames } from '../../../engine/codec'
import { jobDir } from '../layout'
import type { ThreadEnv } from '../thread-protocol'
import { WARM_UP_FILE, WARM_UP_TEXT, warmUpJob } from '../warm-up-input'
import { runTask } from './run'

const LINES = WARM_UP_TEXT.split('\n').length - 1
const WORDS = WARM_UP_TEXT.split(/\s+/).filter(w => w !== '').length

/** The plans of `read_text(WARM_UP_FILE) → count` and of the map stage of
 *  `read_text(WARM_UP_FILE) → words → count_by_value`, as the master plans them (checked in its test). */
export function warmUpSpecs(lane: number): { count: TaskSpec; map: TaskSpec } {
  const job = warmUpJob(lane)
  const size = Buffer.byteLength(WARM_UP_TEXT)
  const line = { id: 'line', op: 'read_text', path: WARM_UP_FILE }
  const base = {
    job_id: job, attempt: 0, stage_id: 0, partition: 0, params: {}, shuffle_inputs: [], incarnation: '',
    split: { path: WARM_UP_FILE, start: 0, end: size, file_size: size },
  }
  return {
    count: {
      ...base, task_id: `${job}:0:0`, attempt_id: `${job}:0:0:0`,
      stage: { stage_id: 0, root: { kind: 'source', node: line }, nodes: [{ id: 'n', op: 'count', input: 'line' }], shuffle_writes: [], sinks: ['n'], depends_on: [], partitions: 1 },
    },
    map: {
      ...base, task_id: `${job}:1:0`, attempt_id: `${job}:1:0:0`, stage_id: 1,
      stage: {
        stage_id: 1, root: { kind: 'source', node: line }, nodes: [{ id: 'w', op: 'words', input: 'line' }],
        shuffle_writes: [{ shuffle_id: 'c', node: { id: 'c', op: 'count_by_value', input: 'w' }, from: 'w', partitions: 2 }],
        sinks: [], depends_on: [], partitions: 1,
      },
    },
  }
}

/** Runs of the warm-up tasks (more warms more, at more CPU per new thread). */
export const WARM_UP_RUNS = 1

export type WarmUpOutcome = { tasks: number; failure?: string }

/** Runs the warm-up tasks WARM_UP_RUNS times on the thread's own budget lane, checking each
 *  task's result; `failure` says what went wrong (the thread is fit for tasks either way, only
 *  colder). It stops before its next task once `taskWaiting()`: a real task sent meanwhile waits
 *  for at most one warm-up task, never for all of them. */
export async function warmUp(env: ThreadEnv, lane: number, taskWaiting: () => boolean = () => false): Promise<WarmUpOutcome> {
  const specs = warmUpSpecs(lane)
  // The input too lives in the lane's folder, removed with it: the work dir holds nothing of a
  // warm-up once it is over, as it holds nothing of a job once the job ended.
  const dir = jobDir(env.workDir, specs.count.job_id)
  const warmEnv = { ...env, dataDir: dir }
  let tasks = 0
  try {
    try {
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, WARM_UP_FILE), WARM_UP_TEXT)
    } catch (e) {
      return { tasks, failure: `cannot write the warm-up's input: ${(e as Error).message}` }
    }
    // Once: after one run a job's first task took 1.5 ms, after two 0.8 ms (later tasks 0.2-0.3
    // ms, the first on a thread that ran nothing 3-20 ms; measured from source). A second run
    // would be more CPU for every new thread, which on a loaded machine the jobs pay.
    for (let i = 0; i < WARM_UP_RUNS; i++) {
      if (taskWaiting()) return { tasks }
      const count = await runTask(specs.count, warmEnv, lane)
      tasks++
      if (count.state !== 'SUCCEEDED') return { tasks, failure: count.failure?.message ?? 'the count task failed' }
      if (count.sinks[0]?.records !== LINES) return { tasks, failure: `the count task counted ${count.sinks[0]?.records} lines, not ${LINES}` }
      if (taskWaiting()) return { tasks }
      const map = await runTask(specs.map, warmEnv, lane)
      tasks++
      if (map.state !== 'SUCCEEDED') return { tasks, failure: map.failure?.message ?? 'the map task failed' }
      const words = countedWords(map.blocks.flatMap(b => b.segments))
      if (words !== WORDS) return { tasks, failure: `the map task's output holds ${words} words, not ${WORDS}` }
    }
    return { tasks }
  } finally {
    // A warm-up never throws: a folder it could not make (the work dir gone, or not a folder)
    // has nothing to remove either.
    try { rmSync(dir, { recursive: true, force: true }) } catch { /* nothing of it there */ }
  }
}

/** The words counted in a count_by_value map output: its [word, n] records, decoded, n summed. */
function countedWords(segments: readonly { path: string }[]): number {
  let n = 0
  for (const s of segments) for (const batch of decodeFrames(readFileSync(s.path))) for (const r of batch) n += (r as [string, number])[1]
  return n
}
