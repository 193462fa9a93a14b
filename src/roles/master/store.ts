// The master's state in SQLite (WAL): jobs with their plans and results, every task attempt, the
// worker registry. The only file that writes SQL. Per-attempt history of old jobs lives here, not
// in memory.
import { Database } from 'bun:sqlite'
import type { JobId } from '../../api/ids'
import type { TaskInfo } from '../../api/jobs'
import type { AttemptRun, JobRun, WorkerRun } from './state'

export type StoredJob = {
  job_id: string; seq: number; name: string; state: string; request: string; submitted_ms: number
  started_ms: number | null; finished_ms: number | null; error: string | null; result: string | null; status: string | null
}

export class Store {
  private readonly db: Database
  private readonly upsertJob
  private readonly upsertAttempt
  private readonly upsertWorker

  constructor(path: string) {
    this.db = new Database(path, { create: true, strict: true })
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
        request TEXT NOT NULL, submitted_ms INTEGER NOT NULL, started_ms INTEGER, finished_ms INTEGER,
        error TEXT, result TEXT, status TEXT);
      CREATE TABLE IF NOT EXISTS attempts (
        attempt_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, task_id TEXT NOT NULL, stage_id INTEGER NOT NULL,
        partition INTEGER NOT NULL, attempt INTEGER NOT NULL, worker_id TEXT, state TEXT NOT NULL,
        started_ms INTEGER, finished_ms INTEGER, records_in INTEGER NOT NULL DEFAULT 0,
        records_out INTEGER NOT NULL DEFAULT 0, shuffle_bytes_written INTEGER NOT NULL DEFAULT 0,
        shuffle_bytes_read INTEGER NOT NULL DEFAULT 0, spilled_bytes INTEGER NOT NULL DEFAULT 0, error TEXT);
      CREATE INDEX IF NOT EXISTS attempts_by_job ON attempts (job_id, stage_id, partition, attempt);
      CREATE TABLE IF NOT EXISTS workers (
        worker_id TEXT PRIMARY KEY, address TEXT NOT NULL, incarnation TEXT NOT NULL, slots INTEGER NOT NULL,
        status TEXT NOT NULL, last_seen_ms INTEGER NOT NULL);`)
    this.upsertJob = this.db.prepare(`INSERT INTO jobs VALUES ($job_id, $seq, $name, $state, $request, $submitted_ms,
      $started_ms, $finished_ms, $error, $result, $status) ON CONFLICT(job_id) DO UPDATE SET state = excluded.state,
      started_ms = excluded.started_ms, finished_ms = excluded.finished_ms, error = excluded.error,
      result = excluded.result, status = excluded.status`)
    this.upsertAttempt = this.db.prepare(`INSERT OR REPLACE INTO attempts VALUES ($attempt_id, $job_id, $task_id,
      $stage_id, $partition, $attempt, $worker_id, $state, $started_ms, $finished_ms, $records_in, $records_out,
      $shuffle_bytes_written, $shuffle_bytes_read, $spilled_bytes, $error)`)
    this.upsertWorker = this.db.prepare(`INSERT OR REPLACE INTO workers VALUES ($worker_id, $address, $incarnation,
      $slots, $status, $last_seen_ms)`)
  }

  /** Writes one step's changes in one transaction. `status` is the job's JobStatus snapshot. */
  commit(jobs: readonly { job: JobRun; status: string }[], attempts: readonly AttemptRun[], workers: readonly WorkerRun[]): void {
    if (jobs.length + attempts.length + workers.length === 0) return
    this.db.transaction(() => {
      for (const { job: j, status } of jobs) {
        this.upsertJob.run({
          job_id: j.id, seq: j.seq, name: j.name, state: j.state, request: JSON.stringify(j.request),
          submitted_ms: j.submittedMs, started_ms: j.startedMs, finished_ms: j.finishedMs,
          error: j.error === null ? null : JSON.stringify(j.error), result: j.result === null ? null : JSON.stringify(j.result), status,
        })
      }
      for (const a of attempts) {
        this.upsertAttempt.run({
          attempt_id: a.id, job_id: a.job, task_id: a.task, stage_id: a.stage, partition: a.partition, attempt: a.attempt,
          worker_id: a.worker, state: a.state, started_ms: a.startedMs, finished_ms: a.finishedMs, ...a.metrics, error: a.error,
        })
      }
      for (const w of workers) {
        this.upsertWorker.run({ worker_id: w.id, address: w.address, incarnation: w.incarnation, slots: w.slots, status: w.status, last_seen_ms: w.lastSeenMs })
      }
    })()
  }

  /** Marks jobs left unfinished by an earlier master run as FAILED, with the reason. */
  failUnfinished(nowMs: number, message: string): void {
    const rows = this.db.query("SELECT * FROM jobs WHERE state IN ('QUEUED', 'RUNNING')").all() as StoredJob[]
    const error = { message, node_id: null, task_id: null, record: null }
    for (const r of rows) {
      const status = r.status === null ? null : { ...JSON.parse(r.status), state: 'FAILED', error, finished_at: new Date(nowMs).toISOString() }
      this.db.query('UPDATE jobs SET state = ?, error = ?, finished_ms = ?, status = ? WHERE job_id = ?')
        .run('FAILED', JSON.stringify(error), nowMs, status === null ? null : JSON.stringify(status), r.job_id)
    }
    this.db.query("UPDATE attempts SET state = 'LOST', finished_ms = ? WHERE state IN ('RUNNING', 'PENDING')").run(nowMs)
  }

  jobs(): StoredJob[] {
    return this.db.query('SELECT * FROM jobs ORDER BY seq DESC').all() as StoredJob[]
  }

  job(id: JobId): StoredJob | null {
    return (this.db.query('SELECT * FROM jobs WHERE job_id = ?').get(id) as StoredJob | null) ?? null
  }

  maxSeq(): number {
    return (this.db.query('SELECT COALESCE(MAX(seq), 0) AS n FROM jobs').get() as { n: number }).n
  }

  tasks(id: JobId): TaskInfo[] {
    const rows = this.db.query('SELECT * FROM attempts WHERE job_id = ? ORDER BY stage_id, partition, attempt').all(id) as Record<string, unknown>[]
    const iso = (ms: unknown): string | null => typeof ms === 'number' ? new Date(ms).toISOString() : null
    return rows.map(r => ({
      task_id: r.task_id as string, stage_id: r.stage_id as number, partition: r.partition as number, attempt: r.attempt as number,
      worker_id: (r.worker_id as string | null) ?? null, state: r.state as TaskInfo['state'],
      started_at: iso(r.started_ms), finished_at: iso(r.finished_ms),
      records_in: r.records_in as number, records_out: r.records_out as number,
      shuffle_bytes_written: r.shuffle_bytes_written as number, shuffle_bytes_read: r.shuffle_bytes_read as number,
      spilled_bytes: r.spilled_bytes as number, error: (r.error as string | null) ?? null,
    }))
  }

  close(): void { this.db.close() }
}
