// The worker's only impure loop around step(): stamps events with the clock, runs step, and does
// its actions with the real things: Bun Workers as task threads, the shared budget buffer, the
// file thread, the reporter. Threads' messages, errors and close events come back as events.
// JS runs one callback at a time and step() never awaits, so no lock is needed.
import type { TaskReport, TaskSpec } from '../../api/tasks'
import { budgetLanes, laneBytes, raisePressure, reclaimLane, reservedBytes, setSqueeze } from '../../engine/spill/budget'
import type { BlockStore } from './block-store'
import type { FileWork } from './files/work'
import { attemptDir, jobDir } from './layout'
import { activeTasks, attemptsHere, hasAttempt, newWorkerState, type ThreadId, type WorkerState } from './state'
import { step, type WorkerAction, type WorkerEvent } from './step'
import { partitionSizes, type ThreadEnv, type ThreadReply, type ThreadRequest, type ThreadResult } from './thread-protocol'
import { threadEntry } from './threads'
import { warmUpJob } from './warm-up-input'
import { oneLine } from '../log'

const SMALL_HEAP_BELOW_BYTES = 256 * 1024 * 1024
/** A record or error quoted in a log line is cut here: the line is for finding it, not for holding it. */
const RECORD_CHARS = 200
const ERROR_CHARS = 1000

const idsOf = (spec: TaskSpec) => ({ job: spec.job_id, stage: spec.stage_id, task: spec.task_id, attempt: spec.attempt_id })
const TASK_ENTRY = threadEntry('task/entry.ts')

/** An event before the driver stamps it with the time. */
export type PendingEvent = WorkerEvent extends infer E ? E extends { nowMs: number } ? Omit<E, 'nowMs'> : never : never

export type WorkerDriverDeps = {
  slots: number
  maxMemBytes: number
  env: ThreadEnv
  blocks: BlockStore
  files: FileWork
  /** sends a report to the master (retried there); `onSettled` once it is sent or given up */
  report: (r: TaskReport) => void
  taskEnded: (r: ThreadResult) => void
  workerId: () => string
  now: () => number
  log: (m: Record<string, unknown>) => void
}

export class WorkerDriver {
  readonly state: WorkerState
  private readonly threads = new Map<ThreadId, Worker>()
  private stopped = false

  constructor(private readonly d: WorkerDriverDeps) {
    this.state = newWorkerState(d.slots, d.maxMemBytes)
    this.post({ kind: 'started' })
  }

  private performing = false
  private readonly later: PendingEvent[] = []

  /** Runs an event through step and does what it asks; returns the actions (for the routes' answers).
   *  An event raised while actions are being done (a thread's close during terminate, say) waits
   *  until they are all done, so that actions run in the order step gave them. */
  post(e: PendingEvent): WorkerAction[] {
    if (this.stopped) return []
    if (this.performing) { this.later.push(e); return [] }
    const actions = step(this.state, { ...e, nowMs: this.d.now() } as WorkerEvent)
    this.performing = true
    try {
      for (const a of actions) this.perform(a)
    } finally {
      this.performing = false
    }
    const next = this.later.shift()
    if (next !== undefined) this.post(next)
    return actions
  }

  /** A task pushed by the master: null when accepted, else why it was refused. */
  submit(spec: TaskSpec): { code: 'STALE_INCARNATION' | 'UNKNOWN_JOB'; message: string } | null {
    const refused = this.post({ kind: 'task-received', spec }).find(a => a.kind === 'refuse')
    return refused === undefined ? null : { code: refused.code, message: refused.message }
  }

  kill(attempt: string): boolean {
    const here = hasAttempt(this.state, attempt)
    this.post({ kind: 'kill-requested', attempt })
    return here
  }

  dropJob(job: string): string[] {
    const killed = [...this.state.slots.flatMap(s => s.running?.job_id === job ? [s.running.attempt_id] : []),
      ...this.state.queue.filter(q => q.job_id === job).map(q => q.attempt_id)]
    this.post({ kind: 'job-dropped', job })
    return killed
  }

  /** Reads the resident size and the budget, for the pause and runaway decisions. */
  sampleMemory(rssBytes = process.memoryUsage.rss(), cachedBytes = 0): void {
    const sab = this.d.env.budget
    const lanes = budgetLanes(sab)
    this.post({
      kind: 'memory-sampled', rssBytes, reservedBytes: reservedBytes(sab),
      laneBytes: Array.from({ length: lanes }, (_, i) => laneBytes(sab, i)), cachedBytes,
    })
    this.post({ kind: 'tick' })
  }

  get active(): number { return activeTasks(this.state) }
  get paused(): boolean { return this.state.paused }
  runningAttempts(): string[] { return attemptsHere(this.state) }

  stop(): void {
    this.stopped = true
    for (const t of this.threads.values()) t.terminate()
    this.threads.clear()
  }

  private perform(a: WorkerAction): void {
    switch (a.kind) {
      case 'spawn-thread': this.spawn(a.thread); break
      case 'warm-up': {
        const msg: ThreadRequest = { kind: 'warm-up', env: this.d.env, lane: a.lane }
        this.threads.get(a.thread)?.postMessage(msg)
        break
      }
      case 'run': {
        this.d.log({ level: 'debug', cause: 'task-started', message: `attempt ${a.spec.attempt_id} started`, ...idsOf(a.spec) })
        const msg: ThreadRequest = { kind: 'run', spec: a.spec, env: this.d.env, lane: a.lane }
        this.threads.get(a.thread)?.postMessage(msg)
        break
      }
      case 'terminate-thread': this.threads.get(a.thread)?.terminate(); break
      case 'reclaim-lane': {
        const bytes = reclaimLane(this.d.env.budget, a.lane)
        if (bytes > 0) this.d.log({ level: 'info', cause: 'budget-reclaimed', lane: a.lane, bytes })
        // A thread stopped while it warmed up left its warm-up folder behind: the lane's, so gone
        // once the lane is free (a later thread's warm-up on the lane makes it anew).
        this.fileWork(this.d.files.remove(jobDir(this.d.env.workDir, warmUpJob(a.lane))), 'remove-warm-up')
        break
      }
      case 'raise-pressure': {
        const generation = raisePressure(this.d.env.pressure)
        this.d.log({ level: 'debug', cause: 'memory-pressure', message: `running tasks told to spill (pressure ${generation})`, generation })
        break
      }
      case 'squeeze':
        setSqueeze(this.d.env.pressure, a.on)
        this.d.log({ level: 'debug', cause: 'memory-squeeze', message: a.on ? 'paused for memory: running tasks hold half the budget' : 'resumed: running tasks hold the whole budget again', on: a.on })
        break
      case 'report': this.report(a.spec, a.result); break
      case 'refuse': break
      case 'remove-attempt-files': this.fileWork(this.d.files.remove(attemptDir(this.d.env.workDir, a.job, a.attempt)), 'remove-attempt-files'); break
      case 'drop-job-files':
        this.d.blocks.forgetJob(a.job)
        this.fileWork(this.d.files.remove(jobDir(this.d.env.workDir, a.job)), 'drop-job-files')
        break
      case 'drop-all-files':
        for (const job of this.d.blocks.jobs()) {
          this.d.blocks.forgetJob(job)
          this.fileWork(this.d.files.remove(jobDir(this.d.env.workDir, job)), 'drop-job-files')
        }
        break
      case 'log': this.d.log({ level: a.level, cause: a.cause, message: a.message, ...(a.attempt ? { attempt: a.attempt } : {}) }); break
    }
  }

  private fileWork(p: Promise<void>, cause: string): void {
    p.catch(e => this.d.log({ level: 'warn', cause, message: (e as Error).message }))
  }

  private report(spec: TaskSpec, r: ThreadResult): void {
    this.d.taskEnded(r)
    this.logEnd(spec, r)
    for (const b of r.blocks) this.d.blocks.register(spec.job_id, spec.attempt_id, b)
    this.d.report({
      worker_id: this.d.workerId(), incarnation: spec.incarnation, attempt_id: r.attempt_id, state: r.state, metrics: r.metrics,
      shuffle_outputs: r.blocks.map(b => ({ shuffle_id: b.shuffle_id, sizes: partitionSizes(b) })),
      sinks: r.sinks, ...(r.failure ? { failure: r.failure } : {}),
    })
  }

  /** A user function that threw is a warning with its node and record; other failures too, with
   *  their reason; a success is for debugging. */
  private logEnd(spec: TaskSpec, r: ThreadResult): void {
    const ids = idsOf(spec)
    const f = r.failure
    if (f === undefined) {
      this.d.log({ level: 'debug', cause: 'task-ended', message: `attempt ${spec.attempt_id} ${r.state}`, ...ids, state: r.state, records_in: r.metrics.records_in, records_out: r.metrics.records_out })
    } else if (f.reason === 'udf-error') {
      this.d.log({ level: 'warn', cause: 'udf-failed', message: `node ${f.node_id ?? '?'} threw in attempt ${spec.attempt_id}: ${oneLine(f.message)}`, ...ids,
        node: f.node_id ?? null, record: f.record === undefined ? null : f.record.slice(0, RECORD_CHARS), error: f.message.slice(0, ERROR_CHARS) })
    } else {
      this.d.log({ level: 'warn', cause: 'task-failed', message: `attempt ${spec.attempt_id} failed (${f.reason}): ${oneLine(f.message)}`, ...ids, reason: f.reason, error: f.message.slice(0, ERROR_CHARS),
        ...(f.from_worker === undefined ? {} : { from_worker: f.from_worker }) })
    }
  }

  private spawn(id: ThreadId): void {
    // A small budget asks for JSC's small heap: it collects sooner, so the resident size follows
    // the budget instead of the machine's memory.
    const thread = new Worker(TASK_ENTRY, { smol: this.d.env.spillAtBytes < SMALL_HEAP_BELOW_BYTES })
    this.threads.set(id, thread)
    thread.onmessage = (e: MessageEvent<ThreadReply>) => {
      const reply = e.data
      if (reply.kind === 'result') { this.post({ kind: 'thread-finished', thread: id, result: reply.result }); return }
      // A warm-up is the thread's own affair: no job hears of it, and one that failed only leaves
      // the thread colder.
      if (reply.failure === undefined) this.d.log({ level: 'debug', cause: 'thread-warmed', message: `task thread ${id} warmed up in ${reply.ms.toFixed(1)} ms (${reply.tasks} tasks)`, thread: id, ms: Math.round(reply.ms * 10) / 10, tasks: reply.tasks })
      else this.d.log({ level: 'warn', cause: 'warm-up-failed', message: `task thread ${id} could not warm up: ${reply.failure}`, thread: id })
    }
    thread.onerror = (e: ErrorEvent) => { this.post({ kind: 'thread-crashed', thread: id, message: e.message }) }
    thread.addEventListener('close', (e: Event) => {
      this.threads.delete(id)
      this.post({ kind: 'thread-exited', thread: id, code: (e as Event & { code?: number }).code ?? 0 })
    })
  }
}
