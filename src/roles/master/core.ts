// What the master's routes call: submit, status, results, cancel, heartbeats and task reports.
// Translates between the API and the scheduler's events; decides nothing itself.
import type { AttemptId, JobId } from '../../api/ids'
import { ApiError } from '../../api/errors'
import type { Heartbeat, HeartbeatAck, WorkerInfo } from '../../api/heartbeat'
import { FINAL_JOB_STATES, type JobAccepted, type JobRequest, type JobResult, type JobStatus, type JobSummary, type TaskInfo } from '../../api/jobs'
import { DEFAULT_JOBS_PAGE, DEFAULT_TASKS_PAGE, jobCursor, parseJobCursor, parseTaskCursor, taskCursor, type JobsQuery, type Page, type TasksQuery } from '../../api/paging'
import type { ListAnswer, ListRequest, TaskReport } from '../../api/tasks'
import { refused } from './worker-client'
import { validateJob } from '../../engine/dag'
import { SUPPORTED_OPS } from '../../engine/plan'
import type { Clock } from '../clock'
import { commitAllowed } from './task-events'
import type { Driver } from './driver'
import { buildJobRun, checkReplicas, listingRequest } from './planning'
import { mergeListings, type DiskListing } from './inputs'
import { persistNodes, trackedParts } from './catalog'
import { inputProblems, LINEAGE_LISTING, lineageFiles, listedFiles, listingPath } from './lineage'
import { isLive, type MasterState, type WorkerRun } from './state'
import { jobStatus, summaryOf } from './status'
import type { Store } from './store'
import type { WorkerClient } from './worker-client'

export class MasterCore {
  private seq: number
  private planned = 0

  constructor(private readonly driver: Driver, private readonly store: Store, private readonly clock: Clock,
    private readonly workers: WorkerClient, private readonly waitForWorkerMs: number,
    /** paths no job may touch, checked by the workers that list (the state db) */
    private readonly reserved: NonNullable<ListRequest['reserved']> = [],
    /** holds the tasks launched on a worker for the answer to its report request (Launcher.hold) */
    private readonly hold?: (address: string) => () => string[]) {
    this.seq = store.maxSeq()
  }

  async submit(req: JobRequest): Promise<JobAccepted> {
    const valid = validateJob(req, SUPPORTED_OPS)
    const request = { ...listingRequest(valid), reserved: this.reserved }
    // The input files of the datasets it reads are listed too: a lost partition is recomputed
    // only from the files it came from, unchanged.
    const reads = [...valid.nodes.values()].filter(n => n.op === 'read_dataset').map(n => n.name!)
    const lineage = lineageFiles(reads, this.driver.state.datasets)
    // Every disk lists the inputs (each holds its own files) and checks the outputs (a link out
    // of the data dir, or an existing output, may be on one disk only).
    // (apart: they are not the job's inputs, and its outputs may be where they were)
    const [listings, lineageListings] = await Promise.all([this.listOnEveryDisk(request), lineage.length === 0 ? [] : this.listOnEveryDisk({
      inputs: lineage.map((f, i) => ({ node_id: `${LINEAGE_LISTING}${i}`, path: listingPath(f.path), allow_empty: true })), outputs: [], reserved: this.reserved,
    })])
    const problems = inputProblems(lineage, listedFiles(lineage, lineageListings))
    const inputs = mergeListings(listings, request.inputs, trackedParts(this.driver.state))
    checkReplicas(valid, listings.length)
    // Nothing is removed here: an output the job overwrites stays whole until the job's own is
    // complete, and is then swapped (finalize.ts). A submit that fails leaves every file as it was.
    const live = this.liveWorkers()
    const slots = live.reduce((n, w) => n + w.slots, 0)
    const peerChars = live.reduce((n, w) => Math.max(n, w.id.length + w.address.length), 64)
    const id = newJobId(this.clock.now())
    const job = buildJobRun({ id, seq: ++this.seq, request: req, valid, listing: { inputs }, defaultPartitions: Math.max(1, 2 * slots), nowMs: this.clock.now(), peerChars, datasets: this.driver.state.datasets, persisting: persistingNow(this.driver.state) })
    if (problems.size > 0) job.inputProblems = problems
    this.driver.post({ kind: 'job-submitted', job })
    // Accepted means stored: a master that dies now finds the job when it restarts.
    await this.driver.persisted()
    return { job_id: id, state: job.state }
  }

  jobStatus(id: string): JobStatus {
    const live = this.driver.state.jobs.get(id as JobId)
    if (live !== undefined) return jobStatus(live)
    const row = this.store.job(id as JobId)
    if (row === null || row.status === null) throw unknownJob(id)
    return JSON.parse(row.status) as JobStatus
  }

  /** A page of job summaries, newest first. Ended jobs are read from the store (they are not in
   *  memory); those still running from memory, so their progress is current. */
  jobs(q: JobsQuery = {}): Page<JobSummary> {
    if (q.before !== undefined && q.after !== undefined) throw bothCursors()
    this.driver.flush()
    const rows = this.store.jobPage({
      state: q.state, limit: q.limit ?? DEFAULT_JOBS_PAGE,
      before: q.before === undefined ? undefined : parseJobCursor(q.before),
      after: q.after === undefined ? undefined : parseJobCursor(q.after),
    })
    const items: JobSummary[] = []
    for (const row of rows) {
      const live = this.driver.state.jobs.get(row.job_id as JobId)
      const s = live !== undefined ? jobStatus(live) : row.status !== null ? JSON.parse(row.status) as JobStatus : null
      if (s !== null) items.push(summaryOf(s))
    }
    const first = rows[0]
    const last = rows[rows.length - 1]
    return {
      items,
      next: last !== undefined && this.store.hasJobBeyond(last.seq, '<', q.state) ? jobCursor(last.seq) : null,
      prev: first !== undefined && this.store.hasJobBeyond(first.seq, '>', q.state) ? jobCursor(first.seq) : null,
      total: this.store.countJobs(q.state),
    }
  }

  /** A page of a job's task attempts, in (stage, partition, attempt) order, from the store. */
  tasks(id: string, q: TasksQuery = {}): Page<TaskInfo> {
    this.jobStatus(id)
    if (q.before !== undefined && q.after !== undefined) throw bothCursors()
    this.driver.flush()
    const job = id as JobId
    const filter = { stage: q.stage, state: q.state }
    const items = this.store.taskPage(job, {
      ...filter, limit: q.limit ?? DEFAULT_TASKS_PAGE,
      after: q.after === undefined ? undefined : parseTaskCursor(q.after),
      before: q.before === undefined ? undefined : parseTaskCursor(q.before),
    })
    const key = (x: TaskInfo) => [x.stage_id, x.partition, x.attempt] as const
    const first = items[0]
    const last = items[items.length - 1]
    return {
      items,
      next: last !== undefined && this.store.hasTaskBeyond(job, key(last), '>', filter) ? taskCursor(last) : null,
      prev: first !== undefined && this.store.hasTaskBeyond(job, key(first), '<', filter) ? taskCursor(first) : null,
      total: this.store.countTasks(job, filter),
    }
  }

  result(id: string): JobResult {
    const status = this.jobStatus(id)
    if (!FINAL_JOB_STATES.includes(status.state)) {
      throw new ApiError('JOB_NOT_FINISHED', `job ${id} is ${status.state}: wait until it has finished (GET /jobs/${id})`, { state: status.state })
    }
    const live = this.driver.state.jobs.get(id as JobId)
    if (live?.result) return live.result
    const row = this.store.job(id as JobId)
    if (row?.result) return JSON.parse(row.result) as JobResult
    return { sinks: {} }
  }

  /** DELETE /datasets/:name: gone from the catalog once stored; the workers free it meanwhile. */
  async deleteDataset(name: string): Promise<boolean> {
    if (!this.driver.state.datasets.has(name)) return false
    this.driver.post({ kind: 'dataset-delete-requested', name })
    await this.driver.persisted()
    return true
  }

  cancel(id: string): JobStatus {
    this.jobStatus(id)
    this.driver.post({ kind: 'job-cancel-requested', job: id as JobId })
    return this.jobStatus(id)
  }

  heartbeat(hb: Heartbeat): HeartbeatAck {
    this.driver.post({ kind: 'heartbeat-received', hb })
    const w = this.driver.state.workers.get(hb.worker_id as WorkerRun['id'])
    return { ok: true, incarnation: w?.incarnation ?? '' }
  }

  workerList(): WorkerInfo[] {
    return [...this.driver.state.workers.values()].map(w => ({
      worker_id: w.id, address: w.address, status: w.status, active_tasks: isLive(w) ? w.activeTasks : 0,
      slots: w.slots, mem_usage_mb: w.memMb, last_heartbeat: w.lastSeenMs, disk_id: w.disk,
      ...(w.cached === undefined ? {} : { cached_memory_bytes: w.cached.memoryBytes, cached_disk_bytes: w.cached.diskBytes }),
    }))
  }

  /** Acknowledged once stored: the worker then forgets the attempt, and the master must not. */
  async report(r: TaskReport): Promise<{ ok: true }> {
    this.driver.post({ kind: 'task-reported', report: r })
    await this.driver.persisted()
    return { ok: true }
  }

  /** With `take`, the answer also carries (as JSON texts) the tasks launched on the reporting
   *  worker while its reports were stored: the worker asked for them, and queues them at once. Only
   *  for the worker's current incarnation: a report of an older one goes to a process that would
   *  refuse them. */
  async reports(rs: TaskReport[], take = false): Promise<{ ok: true; tasks?: string[] }> {
    const w = take ? this.driver.state.workers.get(rs[0]!.worker_id as WorkerRun['id']) : undefined
    const sameWorker = w !== undefined && isLive(w) && rs.every(r => r.worker_id === w.id && r.incarnation === w.incarnation)
    const release = sameWorker && this.hold !== undefined ? this.hold(w.address) : undefined
    let tasks: string[] = []
    try {
      for (const r of rs) this.driver.post({ kind: 'task-reported', report: r })
      await this.driver.persisted()
    } finally {
      tasks = release?.() ?? []
    }
    return tasks.length > 0 ? { ok: true, tasks } : { ok: true }
  }

  /** The answer is stored before it is given: a restarted master must not let a second attempt commit. */
  async commit(attempt: string): Promise<{ commit: boolean }> {
    this.driver.post({ kind: 'commit-requested', attempt: attempt as AttemptId })
    const commit = commitAllowed(this.driver.state, attempt as AttemptId)
    await this.driver.persisted()
    return { commit }
  }

  liveWorkers(): WorkerRun[] {
    return [...this.driver.state.workers.values()].filter(isLive)
  }

  /** A worker that refuses connections is declared DEAD without waiting for its lease. */
  private loseIfRefused(w: WorkerRun, e: unknown): boolean {
    if (!refused((e as { cause?: unknown }).cause)) return false
    this.driver.post({ kind: 'worker-unreachable', worker: w.id, incarnation: w.incarnation })
    return true
  }

  /** One listing per disk, asked of its live workers in turn. A worker that refuses connections is
   *  declared DEAD (its disk's files are then not the job's, as with any worker not live at
   *  submit); a disk none of whose workers answers otherwise refuses the submit: planning without
   *  its files would read less than the user's data without saying so. */
  private async listOnEveryDisk(req: ListRequest): Promise<DiskListing[]> {
    await this.someLiveWorker()
    const disks = new Map<string, WorkerRun[]>()
    for (const w of this.liveWorkers()) disks.set(w.disk, [...disks.get(w.disk) ?? [], w])
    const answers = await Promise.all([...disks].map(async ([disk, workers]): Promise<DiskListing | null> => {
      let problem: unknown = null
      for (const w of workers) {
        try {
          return { disk, workers: workers.map(x => x.id), answer: await this.workers.list(w.address, req) }
        } catch (e) {
          if (!this.loseIfRefused(w, e)) problem = e
        }
      }
      if (problem === null) return null
      throw new ApiError('WORKER_UNAVAILABLE', `worker ${workers.map(w => w.id).join(', ')} did not answer the input listing (${(problem as Error).message}): ` +
        'the files on its disk cannot be planned; submit again in a moment', { workers: workers.map(w => w.id) })
    }))
    const listings = answers.filter((a): a is DiskListing => a !== null)
    if (listings.length === 0) return this.listOnEveryDisk(req)
    return listings
  }

  // Planning needs a worker to list the input; right after start-up, give workers a moment to join.
  private async someLiveWorker(): Promise<WorkerRun> {
    const deadline = this.clock.now() + this.waitForWorkerMs
    for (;;) {
      const live = this.liveWorkers()
      if (live.length > 0) return live[this.planned++ % live.length]!
      if (this.clock.now() >= deadline) {
        throw new ApiError('NO_WORKERS', 'no live worker to plan the job on: start one with `minispark worker --master URL` and submit again')
      }
      await Bun.sleep(100)
    }
  }
}

const bothCursors = (): ApiError =>
  new ApiError('INVALID_REQUEST', 'give `before` or `after`, not both: each is a cursor from the X-Next-Cursor or X-Prev-Cursor header of the page before')

const unknownJob = (id: string): ApiError => new ApiError('UNKNOWN_JOB', `no job ${id}: list jobs with GET /jobs`, { job_id: id })

/** The dataset names unfinished jobs persist, with the job. */
function persistingNow(s: MasterState): Map<string, string> {
  const m = new Map<string, string>()
  for (const j of s.jobs.values()) {
    if (j.state !== 'QUEUED' && j.state !== 'RUNNING') continue
    for (const n of persistNodes(j.request.nodes)) m.set(n.name!, j.id)
  }
  return m
}

function newJobId(nowMs: number): JobId {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36).padStart(7, '0')
  return `job-${nowMs.toString(36)}-${rand}` as JobId
}
