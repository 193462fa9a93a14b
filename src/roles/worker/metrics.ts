// What a worker's GET /metrics tells Prometheus: its task attempts by how they ended, the records,
// shuffle and spilled bytes they handled, its running tasks, its memory budget, and how long ago the
// master last acknowledged its heartbeat; then its process and HTTP metrics (process-metrics.ts).
// Counts what it is told; decides nothing. Its own names all start with minispark_worker_, which
// the master never uses: a sum over every target never adds the master's view of a worker to the
// worker's own.
import { MetricsText } from '../../api/metrics'
import type { TaskMetrics } from '../../api/tasks'
import { VERSION } from '../http'
import type { ProcessMetrics } from '../process-metrics'

export type WorkerMetricsDeps = {
  workerId: () => string
  slots: number
  /** task attempts running or queued here now */
  active: () => number
  /** CPU, memory, heap, start time, HTTP requests of this process */
  process: ProcessMetrics
  /** bytes of the memory budget its tasks hold now */
  budgetBytes?: () => number
  /** bytes of cached partitions held here, in memory and in the work dir */
  cachedBytes?: () => { memory: number; disk: number }
  /** whether the worker is PAUSED now */
  paused?: () => boolean
}

export class WorkerMetrics {
  private readonly ended = new Map<'SUCCEEDED' | 'FAILED', number>([['SUCCEEDED', 0], ['FAILED', 0]])
  private readonly totals: TaskMetrics = { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 }
  private lastAckMs: number | null = null

  constructor(private readonly deps: WorkerMetricsDeps) {}

  /** A task attempt ended on this worker (whatever the master makes of its report). */
  taskEnded(r: { state: 'SUCCEEDED' | 'FAILED'; metrics: TaskMetrics }): void {
    this.ended.set(r.state, (this.ended.get(r.state) ?? 0) + 1)
    for (const k of Object.keys(this.totals) as (keyof TaskMetrics)[]) this.totals[k] += r.metrics[k]
  }

  /** The master answered a heartbeat. */
  heartbeatAcked(nowMs: number): void { this.lastAckMs = nowMs }

  async render(nowMs: number): Promise<string> {
    const worker = this.deps.workerId()
    const own = new MetricsText()
      .gauge('minispark_build_info', 'the running Mini-Spark version', [[{ version: VERSION, role: 'worker', worker }, 1]])
      .counter('minispark_worker_task_attempts_total', 'task attempts that ended on this worker, by how', [...this.ended].map(([s, n]) => [{ state: s }, n]))
      .gauge('minispark_worker_active_tasks', 'task attempts running or queued on this worker', this.deps.active())
      .gauge('minispark_worker_slots', 'task threads of this worker', this.deps.slots)
      .counter('minispark_worker_records_read_total', 'records read by task attempts here', this.totals.records_in)
      .counter('minispark_worker_records_written_total', 'records produced by task attempts here', this.totals.records_out)
      .counter('minispark_worker_shuffle_written_bytes_total', 'shuffle bytes written by task attempts here', this.totals.shuffle_bytes_written)
      .counter('minispark_worker_shuffle_read_bytes_total', 'shuffle bytes fetched by task attempts here', this.totals.shuffle_bytes_read)
      .counter('minispark_worker_spilled_bytes_total', 'bytes task attempts here spilled to disk', this.totals.spilled_bytes)
      // NaN until the first acknowledged heartbeat: "never" is not an age.
      .gauge('minispark_worker_heartbeat_age_seconds', 'seconds since the master last acknowledged a heartbeat of this worker',
        this.lastAckMs === null ? NaN : Math.max(0, nowMs - this.lastAckMs) / 1000)
      .gauge('minispark_worker_budget_reserved_bytes', 'bytes of the memory budget (spill accounting) held by task threads now', (this.deps.budgetBytes ?? (() => 0))())
      .gauge('minispark_worker_cached_bytes', 'bytes of cached partitions held by this worker, by where', Object.entries((this.deps.cachedBytes ?? (() => ({ memory: 0, disk: 0 })))()).map(([where, n]) => [{ where }, n]))
      .gauge('minispark_worker_paused', '1 while the worker is PAUSED (its resident memory past the pause mark), else 0', (this.deps.paused?.() ?? false) ? 1 : 0)
      .toString()
    return own + await this.deps.process.text()
  }
}
