// A task thread's warm-up: before its first real task, a fresh thread runs a tiny task of the
// engine's own (read_text of a small file in the worker's work dir, then count) through the same
// runTask as every task. JSC parses and compiles each function on its first call, so a thread that
// has run nothing spends some 10 ms more on its first task than on later ones; a one-task job pays
// that in full, since every job starts on a fresh thread.
//
// No user code runs here (no job's function or params), nothing is written (count is not a write
// sink), and its result goes to no job: the thread answers "warmed", never a task result.
import type { TaskSpec } from '../../../api/tasks'
import type { ThreadEnv } from '../thread-protocol'
import { WARM_UP_FILE, WARM_UP_TEXT, warmUpDir } from '../warm-up-input'
import { runTask } from './run'

/** Not a valid job id (ids are [A-Za-z0-9_-]), so no job's folder or attempt can be this one's. */
export const WARM_UP_JOB = '.warm-up'

/** The plan of `read_text(WARM_UP_FILE) → count`, as the master plans it (checked in its test). */
export function warmUpSpec(): TaskSpec {
  const size = Buffer.byteLength(WARM_UP_TEXT)
  return {
    job_id: WARM_UP_JOB, task_id: `${WARM_UP_JOB}:0:0`, attempt_id: `${WARM_UP_JOB}:0:0:0`, attempt: 0, stage_id: 0, partition: 0, params: {},
    stage: {
      stage_id: 0, root: { kind: 'source', node: { id: 'line', op: 'read_text', path: WARM_UP_FILE } },
      nodes: [{ id: 'n', op: 'count', input: 'line' }], shuffle_writes: [], sinks: ['n'], depends_on: [], partitions: 1,
    },
    split: { path: WARM_UP_FILE, start: 0, end: size, file_size: size }, shuffle_inputs: [], incarnation: '',
  }
}

export const WARM_UP_RUNS = 2

/** Runs the warm-up task WARM_UP_RUNS times on the thread's own budget lane; undefined when the last
 *  counted the lines it should, else what went wrong (the thread is fit for tasks either way). */
export async function warmUp(env: ThreadEnv, lane: number): Promise<string | undefined> {
  const warmEnv = { ...env, dataDir: warmUpDir(env.workDir) }
  // Twice: after one run a job's first task still took 1.5 ms, after two 0.8 ms (later tasks
  // 0.2-0.3 ms, the first on a thread that ran nothing 3-20 ms; measured from source). The second
  // run costs under a millisecond.
  for (let i = 1; i < WARM_UP_RUNS; i++) await runTask(warmUpSpec(), warmEnv, lane)
  const r = await runTask(warmUpSpec(), warmEnv, lane)
  if (r.state !== 'SUCCEEDED') return r.failure?.message ?? 'the warm-up task failed'
  const lines = WARM_UP_TEXT.split('\n').length - 1
  if (r.sinks[0]?.records !== lines) return `the warm-up task counted ${r.sinks[0]?.records} lines, not ${lines}`
  return undefined
}
