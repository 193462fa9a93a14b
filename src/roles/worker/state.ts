// The worker's state, as its decisions (step.ts) see it: task slots, the threads that fill them,
// their lanes in the shared memory budget, the queue, and the jobs that have ended.
//
// A slot's thread lives from `spawn` to its close event. A thread the worker ends (kill, crash,
// task_timeout, memory, another job's task, new incarnation) is terminated and waits in `closing`
// until it is gone; only then is its budget lane reclaimed and given to a new thread. A thread that
// ends by itself (its code called process.exit) is gone at once.
import type { TaskSpec } from '../../api/tasks'

export type ThreadId = number

export type SlotRun = {
  /** the slot's thread; null while it waits for a free budget lane */
  thread: ThreadId | null
  lane: number
  /** the job whose tasks this thread runs: a thread never runs two jobs' code */
  job: string | null
  /** the thread has run only the engine's own operators, over little data (REUSE_MAX_RECORDS,
   *  REUSE_MAX_BYTES): no job's code ran in it, so another job may take it when it is idle, as it
   *  would a spare; it is not replaced at its job's end. (A source's bytes read are not counted:
   *  task metrics do not carry them; records are.) */
  reusable: boolean
  /** records and bytes the thread's tasks went through, while it is reusable */
  workRecords: number
  workBytes: number
  running: TaskSpec | null
  startedMs: number
  /** task_timeout: when the running attempt is failed; null: no limit */
  deadlineMs: number | null
}

export type WorkerState = {
  slots: SlotRun[]
  queue: TaskSpec[]
  freeLanes: number[]
  /** started threads that no slot uses yet, ready for the next job: a job switch need not wait
   *  for a thread to start */
  spares: { thread: ThreadId; lane: number }[]
  /** idle threads of jobs still running, oldest first, taken off their slot for another job's task:
   *  when that job's next task comes, it finds its thread instead of starting a new one (jobs that
   *  run side by side would otherwise start a thread at every switch) */
  parked: { thread: ThreadId; lane: number; job: string }[]
  /** terminated threads whose close event has not come yet, with their lanes */
  closing: Map<ThreadId, number>
  nextThread: ThreadId
  /** jobs known to have ended, oldest first: their late tasks are refused */
  ended: Set<string>
  incarnation: string | undefined
  paused: boolean
  /** when the memory watchdog last stopped a task */
  lastStopMs: number
  /** when running tasks were last told to spill for the resident size (memory.ts pressureDecision) */
  lastPressureMs: number
  maxMemBytes: number
}

/** Jobs remembered as ended, so that a launch still on its way when the job's data was dropped is
 *  refused instead of run (it would take a slot and leave files behind). */
export const ENDED_JOBS_KEPT = 10_000

/** Budget lanes per slot: its thread, a spare, parked threads, and threads still closing. */
export const LANES_PER_SLOT = 6

/** Parked threads kept per slot; past that, the oldest goes. */
export const PARKED_PER_SLOT = 2

/** Parked threads kept per slot under a small budget (SPARES_FROM_BYTES): memory first there too. */
export const PARKED_PER_SLOT_SMALL = 1

/** Below this --max-mem, no spare thread is kept: an idle thread costs some 10–20 MiB resident,
 *  which a small budget needs more than a faster job switch. */
export const SPARES_FROM_BYTES = 256 * 1024 * 1024

/** A thread that ran only built-in operators stays for other jobs while its tasks went through
 *  at most this many records and bytes in all (read, written, shuffled, spilled): past that it is
 *  replaced at its job's end as any thread, so that the heap a large job left goes with it. */
export const REUSE_MAX_RECORDS = 100_000
export const REUSE_MAX_BYTES = 16 * 1024 * 1024

/** Spare threads kept started: one per slot, so that every slot can switch jobs at once; none
 *  before the first job has ended, so that a worker starts as fast as it did with one thread a slot,
 *  and none under a small budget. */
export const sparesWanted = (s: WorkerState): number => s.ended.size > 0 && s.maxMemBytes >= SPARES_FROM_BYTES ? s.slots.length : 0

export function newWorkerState(slots: number, maxMemBytes: number): WorkerState {
  return {
    slots: Array.from({ length: slots }, () => ({ thread: null, lane: -1, job: null, reusable: true, workRecords: 0, workBytes: 0, running: null, startedMs: 0, deadlineMs: null })),
    queue: [],
    freeLanes: Array.from({ length: slots * LANES_PER_SLOT }, (_, i) => i),
    spares: [],
    parked: [],
    closing: new Map(),
    nextThread: 1,
    ended: new Set(),
    incarnation: undefined,
    paused: false,
    lastStopMs: -Infinity,
    lastPressureMs: -Infinity,
    maxMemBytes,
  }
}

/** Attempts running or queued here. */
export function attemptsHere(s: WorkerState): string[] {
  return [...s.slots.flatMap(x => x.running ? [x.running.attempt_id] : []), ...s.queue.map(q => q.attempt_id)]
}

export const activeTasks = (s: WorkerState): number => s.slots.filter(x => x.running !== null).length + s.queue.length

export const hasAttempt = (s: WorkerState, attempt: string): boolean => attemptsHere(s).includes(attempt)
