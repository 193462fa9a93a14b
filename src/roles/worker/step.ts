// The worker's decisions, pure: step(state, event) → actions. Events are past-tense facts stamped
// with the time; actions are what the driver (driver.ts) must do with threads, files and sockets.
// No await, no clock, no I/O here. step() changes `s` in place; nothing else may.
import type { TaskFailureWire, TaskSpec } from '../../api/tasks'
import { RUNAWAY_GRACE_MS, RUNAWAY_MARGIN_BYTES, SPILL_FRACTION, pauseDecision, pauseMarks, pressureDecision } from './memory'
import { ENDED_JOBS_KEPT, PARKED_PER_SLOT, PARKED_PER_SLOT_SMALL, REUSE_MAX_BYTES, REUSE_MAX_RECORDS, SPARES_FROM_BYTES, sparesWanted, type SlotRun, type ThreadId, type WorkerState } from './state'
import type { ThreadResult } from './thread-protocol'
import { runsUserCode } from './user-code'

export type WorkerEvent =
  | { kind: 'started'; nowMs: number }
  | { kind: 'task-received'; nowMs: number; spec: TaskSpec }
  | { kind: 'thread-finished'; nowMs: number; thread: ThreadId; result: ThreadResult }
  /** an error escaped the task's code (the thread's error event) */
  | { kind: 'thread-crashed'; nowMs: number; thread: ThreadId; message: string }
  /** the thread is gone (its close event): terminated by us, or its code called process.exit */
  | { kind: 'thread-exited'; nowMs: number; thread: ThreadId; code: number }
  | { kind: 'kill-requested'; nowMs: number; attempt: string }
  | { kind: 'job-dropped'; nowMs: number; job: string }
  /** `laneBytes[i]`: what the thread on budget lane i holds */
  | { kind: 'memory-sampled'; nowMs: number; rssBytes: number; reservedBytes: number; laneBytes: readonly number[]; cachedBytes?: number }
  | { kind: 'tick'; nowMs: number }
  /** the master answered a heartbeat with this incarnation */
  | { kind: 'incarnation-given'; nowMs: number; incarnation: string }

export type WorkerAction =
  | { kind: 'spawn-thread'; thread: ThreadId; lane: number }
  /** the new thread runs the engine's warm-up task (task/warm-up.ts) before anything else */
  | { kind: 'warm-up'; thread: ThreadId; lane: number }
  | { kind: 'run'; thread: ThreadId; lane: number; spec: TaskSpec }
  | { kind: 'terminate-thread'; thread: ThreadId }
  /** the lane's thread is gone: give what it held back to the shared budget */
  | { kind: 'reclaim-lane'; lane: number }
  /** the resident size is past its mark: running tasks spill what they hold, once each */
  | { kind: 'raise-pressure' }
  /** paused for the resident size, or resumed: running tasks hold less of the budget meanwhile */
  | { kind: 'squeeze'; on: boolean }
  | { kind: 'report'; spec: TaskSpec; result: ThreadResult }
  | { kind: 'refuse'; attempt: string; code: 'STALE_INCARNATION' | 'UNKNOWN_JOB'; message: string }
  /** an attempt that ended without cleaning up: remove its scratch folder */
  | { kind: 'remove-attempt-files'; job: string; attempt: string }
  | { kind: 'drop-job-files'; job: string }
  | { kind: 'drop-all-files' }
  | { kind: 'log'; level: 'warn' | 'error'; cause: string; message: string; attempt?: string }

export function step(s: WorkerState, e: WorkerEvent): WorkerAction[] {
  const out: WorkerAction[] = []
  switch (e.kind) {
    case 'started': break
    case 'task-received': onTask(s, e.spec, out); break
    case 'thread-finished': onFinished(s, e.thread, e.result, out); break
    case 'thread-crashed': onCrashed(s, e.thread, e.message, out); break
    case 'thread-exited': onExited(s, e.thread, e.code, out); break
    case 'kill-requested': onKill(s, e.attempt, out); break
    case 'job-dropped': onJobDropped(s, e.job, out); break
    case 'memory-sampled': onMemory(s, e, out); break
    case 'tick': onTick(s, e.nowMs, out); break
    case 'incarnation-given': onIncarnation(s, e.incarnation, out); break
  }
  fillSlots(s, out)
  pump(s, e.nowMs, out)
  return out
}

function onTask(s: WorkerState, spec: TaskSpec, out: WorkerAction[]): void {
  // A task for an older incarnation of this worker is stale: the master has moved on.
  if (spec.incarnation !== s.incarnation) {
    out.push({ kind: 'refuse', attempt: spec.attempt_id, code: 'STALE_INCARNATION', message: `task ${spec.attempt_id} is for incarnation ${spec.incarnation}, this worker is ${s.incarnation ?? 'not registered yet'}` })
    return
  }
  if (s.ended.has(spec.job_id)) {
    out.push({ kind: 'refuse', attempt: spec.attempt_id, code: 'UNKNOWN_JOB', message: `task ${spec.attempt_id} belongs to job ${spec.job_id}, which has ended` })
    return
  }
  s.queue.push(spec)
}

const slotOf = (s: WorkerState, thread: ThreadId): SlotRun | undefined => s.slots.find(x => x.thread === thread)

function onFinished(s: WorkerState, thread: ThreadId, result: ThreadResult, out: WorkerAction[]): void {
  const slot = slotOf(s, thread)
  // A thread already let go (killed) may still deliver: its attempt was settled then.
  if (slot === undefined || slot.running === null || slot.running.attempt_id !== result.attempt_id) return
  out.push({ kind: 'report', spec: slot.running, result })
  slot.running = null
  slot.deadlineMs = null
  const m = result.metrics
  slot.workRecords += m.records_in + m.records_out
  slot.workBytes += m.shuffle_bytes_read + m.shuffle_bytes_written + m.spilled_bytes
  if (slot.workRecords > REUSE_MAX_RECORDS || slot.workBytes > REUSE_MAX_BYTES) slot.reusable = false
}

function onCrashed(s: WorkerState, thread: ThreadId, message: string, out: WorkerAction[]): void {
  const slot = slotOf(s, thread)
  if (slot === undefined) { endParked(s, p => p.thread === thread, out); return }
  failRunning(slot, { reason: 'task-error', message: `the task thread crashed: ${message}` }, out)
  letGo(s, slot, out)
}

function onExited(s: WorkerState, thread: ThreadId, code: number, out: WorkerAction[]): void {
  const lane = s.closing.get(thread)
  if (lane !== undefined) {
    s.closing.delete(thread)
    giveBackLane(s, lane, out)
    return
  }
  const spare = s.spares.findIndex(x => x.thread === thread)
  if (spare >= 0) { giveBackLane(s, s.spares.splice(spare, 1)[0]!.lane, out); return }
  const parked = s.parked.findIndex(x => x.thread === thread)
  if (parked >= 0) { giveBackLane(s, s.parked.splice(parked, 1)[0]!.lane, out); return }
  const slot = slotOf(s, thread)
  if (slot === undefined) return
  // Not terminated by us: the task's code ended its own thread.
  failRunning(slot, { reason: 'task-error', message: `the task's code ended its thread (process.exit(${code}) or a fatal error): functions may not call process.exit` }, out)
  const gone = slot.lane
  slot.thread = null
  slot.lane = -1
  slot.job = null
  giveBackLane(s, gone, out)
}

function onKill(s: WorkerState, attempt: string, out: WorkerAction[]): void {
  const q = s.queue.findIndex(x => x.attempt_id === attempt)
  if (q >= 0) { s.queue.splice(q, 1); return }
  const slot = s.slots.find(x => x.running?.attempt_id === attempt)
  if (slot === undefined) return
  // The master stopped it and has settled it: no report.
  out.push({ kind: 'remove-attempt-files', job: slot.running!.job_id, attempt })
  slot.running = null
  letGo(s, slot, out)
}

function onJobDropped(s: WorkerState, job: string, out: WorkerAction[]): void {
  s.ended.add(job)
  if (s.ended.size > ENDED_JOBS_KEPT) s.ended.delete(s.ended.values().next().value!)
  s.queue = s.queue.filter(q => q.job_id !== job)
  for (const slot of s.slots) {
    const busy = slot.running?.job_id === job
    if (busy) slot.running = null
    if (slot.job !== job || slot.thread === null) continue
    // Its threads go too, idle or not: the next job starts on a thread no code of this one touched.
    // An idle one that ran only the engine's own operators stays, for any job: no code of this one
    // ran in it (a busy one is stopped, whatever it runs).
    if (!busy && slot.reusable) slot.job = null
    else letGo(s, slot, out)
  }
  endParked(s, p => p.job === job, out)
  out.push({ kind: 'drop-job-files', job })
}

/**
 * Backpressure from the measured resident size (see memory.ts), spilling told to the running tasks
 * past the same mark (a raise of the shared pressure counter), and the last resort against a task that
 * allocates without bound: past --max-mem plus a margin, one task is stopped (the one holding the
 * most of the budget; among equals the one running longest), then the heap is given time to come
 * back before judging again. Other tasks, other jobs' included, go on.
 */
function onMemory(s: WorkerState, e: Extract<WorkerEvent, { kind: 'memory-sampled' }>, out: WorkerAction[]): void {
  const relievable = s.slots.some(x => x.running !== null) || (e.cachedBytes ?? 0) > 0
  const marks = pauseMarks(s.maxMemBytes, s.slots.length)
  const wasPaused = s.paused
  s.paused = pauseDecision(e.rssBytes, marks, s.paused, relievable)
  if (s.paused !== wasPaused) out.push({ kind: 'squeeze', on: s.paused })
  let held = 0
  for (const slot of s.slots) if (slot.running !== null) held += e.laneBytes[slot.lane] ?? 0
  if (pressureDecision(e.rssBytes, marks.pauseAtBytes, held, SPILL_FRACTION * s.maxMemBytes, e.nowMs, s.lastPressureMs)) {
    s.lastPressureMs = e.nowMs
    out.push({ kind: 'raise-pressure' })
  }
  if (e.nowMs - s.lastStopMs < RUNAWAY_GRACE_MS || e.rssBytes <= s.maxMemBytes + RUNAWAY_MARGIN_BYTES) return
  let victim: SlotRun | undefined
  for (const slot of s.slots) {
    if (slot.running === null) continue
    const held = e.laneBytes[slot.lane] ?? 0
    const best = victim === undefined ? -1 : e.laneBytes[victim.lane] ?? 0
    if (victim === undefined || held > best || (held === best && slot.startedMs < victim.startedMs)) victim = slot
  }
  if (victim === undefined) return
  s.lastStopMs = e.nowMs
  const mib = (b: number): number => Math.round(b / 1048576)
  const attempt = victim.running!.attempt_id
  failRunning(victim, {
    reason: 'task-error',
    message: `the worker's memory reached ${mib(e.rssBytes)} MiB, past --max-mem ${mib(s.maxMemBytes)} MiB + ${mib(RUNAWAY_MARGIN_BYTES)} MiB, and this task held the most (${mib(e.laneBytes[victim.lane] ?? 0)} MiB accounted): a function keeps too much data (allocate less, or give the worker a larger --max-mem)`,
  }, out)
  letGo(s, victim, out)
  out.push({ kind: 'log', level: 'warn', cause: 'memory-runaway', message: `stopped ${attempt} at ${mib(e.rssBytes)} MiB resident`, attempt })
}

function onTick(s: WorkerState, nowMs: number, out: WorkerAction[]): void {
  for (const slot of s.slots) {
    if (slot.running === null || slot.deadlineMs === null || nowMs < slot.deadlineMs) continue
    const limit = slot.running.task_timeout_ms ?? 0
    failRunning(slot, { reason: 'task-error', message: `the task ran longer than its task_timeout (${limit} ms) and was stopped: a function may never return, or the limit is too short for the data` }, out)
    letGo(s, slot, out)
  }
}

/** A new incarnation: the master forgot everything this worker ran or holds. Nothing is reported. */
function onIncarnation(s: WorkerState, incarnation: string, out: WorkerAction[]): void {
  const previous = s.incarnation
  s.incarnation = incarnation
  if (previous === undefined || previous === '' || previous === incarnation) return
  s.queue = []
  for (const slot of s.slots) {
    slot.running = null
    // A thread that ran no code may stay: the master's new view changes nothing for it.
    if (slot.thread !== null && slot.job !== null) letGo(s, slot, out)
  }
  endParked(s, () => true, out)
  out.push({ kind: 'drop-all-files' }, { kind: 'log', level: 'warn', cause: 'new-incarnation', message: `rejoined as ${incarnation}; dropped the work of ${previous}` })
}

/** Reports the slot's running attempt as failed, with its scratch files removed. */
function failRunning(slot: SlotRun, failure: TaskFailureWire, out: WorkerAction[]): void {
  const spec = slot.running
  if (spec === null) return
  slot.running = null
  slot.deadlineMs = null
  out.push({ kind: 'remove-attempt-files', job: spec.job_id, attempt: spec.attempt_id })
  out.push({ kind: 'report', spec, result: failedResult(spec, failure) })
}

/** Terminates the slot's thread; its lane waits for the close event. The slot gets a new thread. */
function letGo(s: WorkerState, slot: SlotRun, out: WorkerAction[]): void {
  if (slot.thread === null) return
  s.closing.set(slot.thread, slot.lane)
  out.push({ kind: 'terminate-thread', thread: slot.thread })
  slot.thread = null
  slot.lane = -1
  slot.job = null
  slot.running = null
  slot.deadlineMs = null
}

/** Terminates the parked threads that `which` picks; their lanes wait for their close events. */
function endParked(s: WorkerState, which: (p: WorkerState['parked'][number]) => boolean, out: WorkerAction[]): void {
  s.parked = s.parked.filter(p => {
    if (!which(p)) return true
    s.closing.set(p.thread, p.lane)
    out.push({ kind: 'terminate-thread', thread: p.thread })
    return false
  })
}

/** Takes an idle slot's thread off it and keeps it for its job's next task; the oldest parked
 *  thread goes when there are too many. The slot is left without a thread. */
function park(s: WorkerState, slot: SlotRun, out: WorkerAction[]): void {
  s.parked.push({ thread: slot.thread!, lane: slot.lane, job: slot.job! })
  const extra = s.parked.length - (s.maxMemBytes >= SPARES_FROM_BYTES ? PARKED_PER_SLOT : PARKED_PER_SLOT_SMALL) * s.slots.length
  if (extra > 0) { const old = new Set(s.parked.slice(0, extra)); endParked(s, p => old.has(p), out) }
  slot.thread = null
  slot.lane = -1
  slot.job = null
}

function giveBackLane(s: WorkerState, lane: number, out: WorkerAction[]): void {
  if (lane < 0) return
  out.push({ kind: 'reclaim-lane', lane })
  s.freeLanes.push(lane)
}

/** Every slot without a thread takes a spare, or a new one while budget lanes are free; then the
 *  spares are made up again. */
function fillSlots(s: WorkerState, out: WorkerAction[]): void {
  for (const slot of s.slots) {
    if (slot.thread !== null) continue
    const t = s.spares.shift() ?? newThread(s, out)
    if (t === null) return
    slot.thread = t.thread
    slot.lane = t.lane
    slot.job = null
    slot.reusable = true
    slot.workRecords = 0
    slot.workBytes = 0
  }
  while (s.spares.length < sparesWanted(s)) {
    const t = newThread(s, out)
    if (t === null) return
    s.spares.push(t)
  }
}

function newThread(s: WorkerState, out: WorkerAction[]): { thread: ThreadId; lane: number } | null {
  const lane = s.freeLanes.shift()
  if (lane === undefined) return null
  const thread = s.nextThread++
  // Every new thread warms up at once, whether it fills a slot or waits as a spare: a job's first
  // task then runs compiled code instead of paying some 10 ms of first calls. The warm-up runs no
  // job's code, so the thread is still fresh for any job; a task sent meanwhile waits behind it in
  // the thread, which costs it less than running cold would.
  out.push({ kind: 'spawn-thread', thread, lane }, { kind: 'warm-up', thread, lane })
  return { thread, lane }
}

/**
 * Queued tasks go to idle threads: first one that already runs the task's job, then a fresh one.
 * An idle thread that ran another job leaves its slot first (parked while its job runs, for that
 * job's next task): a job never sees another job's globals.
 */
function pump(s: WorkerState, nowMs: number, out: WorkerAction[]): void {
  // Paused: what the master sent before it heard of the pause waits until the worker resumes.
  if (s.paused) return
  for (let i = 0; i < s.queue.length;) {
    const spec = s.queue[i]!
    const idle = s.slots.filter(x => x.thread !== null && x.running === null)
    // A reusable thread (only the engine's operators ran in it) is as good as a fresh one.
    const slot = idle.find(x => x.job === spec.job_id) ?? idle.find(x => x.job === null) ?? idle.find(x => x.reusable)
    if (slot === undefined) {
      const other = idle.find(x => x.job !== null)
      if (other === undefined) return
      park(s, other, out)
      const mine = s.parked.findIndex(p => p.job === spec.job_id)
      if (mine >= 0) {
        const p = s.parked.splice(mine, 1)[0]!
        other.thread = p.thread
        other.lane = p.lane
        other.job = p.job
        other.reusable = false   // only threads that ran a job's code are parked
        continue
      }
      fillSlots(s, out)
      if (other.thread === null) return   // no lane free until a closing thread is gone
      continue
    }
    s.queue.splice(i, 1)
    slot.running = spec
    slot.job = spec.job_id
    if (runsUserCode(spec)) slot.reusable = false
    slot.startedMs = nowMs
    slot.deadlineMs = spec.task_timeout_ms !== undefined ? nowMs + spec.task_timeout_ms : null
    out.push({ kind: 'run', thread: slot.thread!, lane: slot.lane, spec })
  }
}

export function failedResult(spec: TaskSpec, failure: TaskFailureWire): ThreadResult {
  return {
    attempt_id: spec.attempt_id, state: 'FAILED', blocks: [], sinks: [],
    metrics: { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 },
    failure,
  }
}
