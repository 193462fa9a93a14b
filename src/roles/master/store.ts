// The master's state in SQLite (WAL): jobs with their plans and results, every task attempt with
// what it produced, the worker registry. The only file that writes SQL. Per-attempt history of
// old jobs lives here, not in memory; a restarted master rebuilds its running jobs from it.
import { Database } from 'bun:sqlite'
import type { JobId } from '../../api/ids'
import type { TaskInfo } from '../../api/jobs'
import type { AttemptRun, JobRun, Overwrite, WorkerRun } from './state'

const SCHEMA_VERSION = 1

export type StoredJob = {
  job_id: string; seq: number; name: string; state: string; request: string; plan: string | null; submitted_ms: number
  started_ms: number | null; finished_ms: number | null; error: string | null; result: string | null; status: string | null
}

export type StoredAttempt = {
  attempt_id: string; job_id: string; task_id: string; stage_id: number; partition: number; attempt: number
  worker_id: string; incarnation: string; state: string; started_ms: number; finished_ms: number | null
  records_in: number; records_out: number; shuffle_bytes_written: number; shuffle_bytes_read: number; spilled_bytes: number
  error: string | null; counted: number; committed: number; result: string | null
}

export type StoredWorker = { worker_id: string; address: string; incarnation: string; slots: number; status: string; last_seen_ms: number }

/** What a job's stages were planned as: kept at submit, since listing the inputs again could differ. */
export type StoredPlan = { stages: { plan: JobRun['stages'][number]['plan']; splits: JobRun['stages'][number]['splits'] }[]; outputs: string[] }

export class Store {
  private readonly db: Database
  private readonly insertJob
  private readonly updateJob
  private readonly upsertAttempt
  private readonly upsertWorker
  private readonly insertOverwrite
  private readonly pruneOverwrites
  private readonly begin
  private readonly end
  private readonly rollback

  constructor(path: string) {
    this.db = new Database(path, { create: true, strict: true })
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    const version = (this.db.query('PRAGMA user_version').get() as { user_version: number }).user_version
    const hasTables = this.db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").get() !== null
    if (hasTables && version !== SCHEMA_VERSION) {
      throw new Error(`${path} holds state of another Mini-Spark version (schema ${version}, this one is ${SCHEMA_VERSION}): give a new --state-db file`)
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
        request TEXT NOT NULL, plan TEXT, submitted_ms INTEGER NOT NULL, started_ms INTEGER, finished_ms INTEGER,
        error TEXT, result TEXT, status TEXT);
      CREATE TABLE IF NOT EXISTS attempts (
        attempt_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, task_id TEXT NOT NULL, stage_id INTEGER NOT NULL,
        partition INTEGER NOT NULL, attempt INTEGER NOT NULL, worker_id TEXT NOT NULL, incarnation TEXT NOT NULL,
        state TEXT NOT NULL, started_ms INTEGER NOT NULL, finished_ms INTEGER, records_in INTEGER NOT NULL DEFAULT 0,
        records_out INTEGER NOT NULL DEFAULT 0, shuffle_bytes_written INTEGER NOT NULL DEFAULT 0,
        shuffle_bytes_read INTEGER NOT NULL DEFAULT 0, spilled_bytes INTEGER NOT NULL DEFAULT 0, error TEXT,
        counted INTEGER NOT NULL DEFAULT 0, committed INTEGER NOT NULL DEFAULT 0, result TEXT);
      CREATE INDEX IF NOT EXISTS attempts_by_job ON attempts (job_id, stage_id, partition, attempt);
      CREATE TABLE IF NOT EXISTS workers (
        worker_id TEXT PRIMARY KEY, address TEXT NOT NULL, incarnation TEXT NOT NULL, slots INTEGER NOT NULL,
        status TEXT NOT NULL, last_seen_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS overwrites (
        path TEXT NOT NULL, job_id TEXT NOT NULL, submitted_ms INTEGER NOT NULL, at_ms INTEGER NOT NULL);
      PRAGMA user_version = ${SCHEMA_VERSION};`)
    this.insertJob = this.db.prepare(`INSERT OR IGNORE INTO jobs (job_id, seq, name, state, request, plan, submitted_ms)
      VALUES ($job_id, $seq, $name, $state, $request, $plan, $submitted_ms)`)
    this.updateJob = this.db.prepare(`UPDATE jobs SET state = $state, started_ms = $started_ms, finished_ms = $finished_ms,
      error = $error, result = $result, status = $status WHERE job_id = $job_id`)
    this.upsertAttempt = this.db.prepare(`INSERT OR REPLACE INTO attempts VALUES ($attempt_id, $job_id, $task_id,
      $stage_id, $partition, $attempt, $worker_id, $incarnation, $state, $started_ms, $finished_ms, $records_in, $records_out,
      $shuffle_bytes_written, $shuffle_bytes_read, $spilled_bytes, $error, $counted, $committed, $result)`)
    this.upsertWorker = this.db.prepare(`INSERT OR REPLACE INTO workers VALUES ($worker_id, $address, $incarnation,
      $slots, $status, $last_seen_ms)`)
    this.insertOverwrite = this.db.prepare('INSERT INTO overwrites VALUES ($path, $job_id, $submitted_ms, $at_ms)')
    this.pruneOverwrites = this.db.prepare('DELETE FROM overwrites WHERE at_ms < $since_ms OR rowid <= (SELECT MAX(rowid) FROM overwrites) - $keep')
    // Prepared once: db.transaction() prepares BEGIN and COMMIT again on each call, and the master
    // commits once per turn of its event loop.
    this.begin = this.db.prepare('BEGIN')
    this.end = this.db.prepare('COMMIT')
    this.rollback = this.db.prepare('ROLLBACK')
  }

  /** Writes one step's changes in one transaction. `status` is the job's JobStatus snapshot. */
  commit(created: readonly JobRun[], jobs: readonly { job: JobRun; status: string }[], attempts: readonly AttemptRun[], workers: readonly WorkerRun[],
    overwrites: readonly Overwrite[] = [], keepOverwrites?: { sinceMs: number; count: number }): void {
    if (created.length + jobs.length + attempts.length + workers.length + overwrites.length === 0) return
    this.begin.run()
    try {
      for (const j of created) {
        const plan: StoredPlan = { stages: j.stages.map(s => ({ plan: s.plan, splits: s.splits })), outputs: j.outputs }
        this.insertJob.run({
          job_id: j.id, seq: j.seq, name: j.name, state: j.state, request: JSON.stringify(j.request),
          plan: JSON.stringify(plan), submitted_ms: j.submittedMs,
        })
      }
      for (const { job: j, status } of jobs) {
        this.updateJob.run({
          job_id: j.id, state: j.state, started_ms: j.startedMs, finished_ms: j.finishedMs,
          error: j.error === null ? null : JSON.stringify(j.error), result: j.result === null ? null : JSON.stringify(j.result), status,
        })
      }
      for (const a of attempts) {
        this.upsertAttempt.run({
          attempt_id: a.id, job_id: a.job, task_id: a.task, stage_id: a.stage, partition: a.partition, attempt: a.attempt,
          worker_id: a.worker, incarnation: a.incarnation, state: a.state, started_ms: a.startedMs, finished_ms: a.finishedMs,
          ...a.metrics, error: a.error, counted: a.counted ? 1 : 0, committed: a.committed ? 1 : 0,
          result: a.result === undefined ? null : JSON.stringify(a.result),
        })
      }
      for (const w of workers) {
        this.upsertWorker.run({ worker_id: w.id, address: w.address, incarnation: w.incarnation, slots: w.slots, status: w.status, last_seen_ms: w.lastSeenMs })
      }
      for (const o of overwrites) this.insertOverwrite.run({ path: o.path, job_id: o.job, submitted_ms: o.submittedMs, at_ms: o.atMs })
      if (overwrites.length > 0 && keepOverwrites !== undefined) this.pruneOverwrites.run({ since_ms: keepOverwrites.sinceMs, keep: keepOverwrites.count })
      this.end.run()
    } catch (e) {
      this.rollback.run()
      throw e
    }
  }

  /** Every job, newest first, without its request, plan and result (those can be large). */
  jobs(): Pick<StoredJob, 'job_id' | 'seq' | 'name' | 'state' | 'status'>[] {
    return this.db.query('SELECT job_id, seq, name, state, status FROM jobs ORDER BY seq DESC').all() as Pick<StoredJob, 'job_id' | 'seq' | 'name' | 'state' | 'status'>[]
  }

  job(id: JobId): StoredJob | null {
    return (this.db.query('SELECT * FROM jobs WHERE job_id = ?').get(id) as StoredJob | null) ?? null
  }

  unfinishedJobs(): StoredJob[] {
    return this.db.query("SELECT * FROM jobs WHERE state IN ('QUEUED', 'RUNNING') ORDER BY seq").all() as StoredJob[]
  }

  attemptsOf(id: JobId): StoredAttempt[] {
    return this.db.query('SELECT * FROM attempts WHERE job_id = ? ORDER BY stage_id, partition, attempt').all(id) as StoredAttempt[]
  }

  workers(): StoredWorker[] {
    return this.db.query('SELECT * FROM workers').all() as StoredWorker[]
  }

  /** Outputs replaced by jobs that succeeded, oldest first (the kept ones: see worker-events.ts). */
  overwrites(): Overwrite[] {
    return (this.db.query('SELECT path, job_id, submitted_ms, at_ms FROM overwrites ORDER BY rowid').all() as { path: string; job_id: string; submitted_ms: number; at_ms: number }[])
      .map(r => ({ path: r.path, job: r.job_id as JobId, submittedMs: r.submitted_ms, atMs: r.at_ms }))
  }

  maxSeq(): number {
    return (this.db.query('SELECT COALESCE(MAX(seq), 0) AS n FROM jobs').get() as { n: number }).n
  }

  tasks(id: JobId): TaskInfo[] {
    const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()
    return this.attemptsOf(id).map(r => ({
      task_id: r.task_id, stage_id: r.stage_id, partition: r.partition, attempt: r.attempt,
      worker_id: r.worker_id, state: r.state as TaskInfo['state'], started_at: iso(r.started_ms), finished_at: iso(r.finished_ms),
      records_in: r.records_in, records_out: r.records_out, shuffle_bytes_written: r.shuffle_bytes_written,
      shuffle_bytes_read: r.shuffle_bytes_read, spilled_bytes: r.spilled_bytes, error: r.error,
    }))
  }

  close(): void { this.db.close() }
}
