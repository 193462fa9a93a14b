// The master's state in SQLite (WAL): jobs with their plans and results, every task attempt with
// what it produced, the worker registry. The only file that writes SQL. Ended jobs live only here,
// not in memory (status, result and per-attempt history), read a page at a time, and pruned by
// the retention rule (retention.ts); a restarted master rebuilds its running jobs from it.
import { Database } from 'bun:sqlite'
import type { JobId } from '../../api/ids'
import type { AttemptState, JobState, TaskInfo } from '../../api/jobs'
import type { PruneCut } from './retention'
import type { AttemptRun, JobRun, Overwrite, Replica, WorkerRun } from './state'
import type { DatasetRecord, OutputPart, OutputRecord } from './catalog'

const SCHEMA_VERSION = 3

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

export type JobRow = { job_id: string; seq: number; state: string; status: string | null }

/** An attempt's place in a job's list: (stage, partition, attempt). */
export type AttemptKey = readonly [number, number, number]
export type AttemptFilter = { stage?: number | undefined; state?: AttemptState | undefined }

const ENDED = "'SUCCEEDED', 'FAILED', 'CANCELLED'"

function attemptWhere(id: JobId, f: AttemptFilter): { where: string[]; args: (string | number)[] } {
  const where = ['job_id = ?']
  const args: (string | number)[] = [id]
  if (f.stage !== undefined) { where.push('stage_id = ?'); args.push(f.stage) }
  if (f.state !== undefined) { where.push('state = ?'); args.push(f.state) }
  return { where, args }
}

const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()

const taskInfo = (r: StoredAttempt): TaskInfo => ({
  task_id: r.task_id, stage_id: r.stage_id, partition: r.partition, attempt: r.attempt,
  worker_id: r.worker_id, state: r.state as TaskInfo['state'], started_at: iso(r.started_ms), finished_at: iso(r.finished_ms),
  records_in: r.records_in, records_out: r.records_out, shuffle_bytes_written: r.shuffle_bytes_written,
  shuffle_bytes_read: r.shuffle_bytes_read, spilled_bytes: r.spilled_bytes, error: r.error,
})

export type StoredWorker = { worker_id: string; address: string; incarnation: string; slots: number; status: string; last_seen_ms: number; disk: string }

/** What a job's stages were planned as: kept at submit, since listing the inputs again could differ. */
export type StoredPlan = { stages: { plan: JobRun['stages'][number]['plan']; splits: JobRun['stages'][number]['splits']; holders?: string[][]; lineage?: JobRun['stages'][number]['lineage'] }[]; outputs: string[]
  /** lineage input files found gone or changed at submit (JobRun.inputProblems) */
  inputProblems?: [string, string][] }

export class Store {
  private readonly db: Database
  private readonly insertJob
  private readonly updateJob
  private readonly upsertAttempt
  private readonly upsertWorker
  private readonly upsertOutput
  private readonly setReplicas
  private readonly upsertDataset
  private readonly deleteDataset
  private readonly insertOverwrite
  private readonly pruneOverwrites
  private readonly deleteAttempts
  private readonly deleteJob
  private readonly keepSeq
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
      CREATE INDEX IF NOT EXISTS jobs_by_seq ON jobs (seq);
      CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS workers (
        worker_id TEXT PRIMARY KEY, address TEXT NOT NULL, incarnation TEXT NOT NULL, slots INTEGER NOT NULL,
        status TEXT NOT NULL, last_seen_ms INTEGER NOT NULL, disk TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS outputs (
        path TEXT PRIMARY KEY, job_id TEXT NOT NULL, at_ms INTEGER NOT NULL, replicas INTEGER NOT NULL, parts TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS datasets (
        name TEXT PRIMARY KEY, job_id TEXT NOT NULL, at_ms INTEGER NOT NULL, record TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS overwrites (
        path TEXT NOT NULL, job_id TEXT NOT NULL, submitted_ms INTEGER NOT NULL, at_ms INTEGER NOT NULL);
      PRAGMA user_version = ${SCHEMA_VERSION};`)
    // A job's plan is written again when stages are added to it while it runs (recompute.ts).
    this.insertJob = this.db.prepare(`INSERT INTO jobs (job_id, seq, name, state, request, plan, submitted_ms)
      VALUES ($job_id, $seq, $name, $state, $request, $plan, $submitted_ms) ON CONFLICT(job_id) DO UPDATE SET plan = excluded.plan`)
    this.updateJob = this.db.prepare(`UPDATE jobs SET state = $state, started_ms = $started_ms, finished_ms = $finished_ms,
      error = $error, result = $result, status = $status WHERE job_id = $job_id`)
    // An update in place, not INSERT OR REPLACE: a REPLACE deletes the row and inserts it again,
    // rewriting both its indexes' entries, at every state change of every attempt. Same result.
    this.upsertAttempt = this.db.prepare(`INSERT INTO attempts VALUES ($attempt_id, $job_id, $task_id,
      $stage_id, $partition, $attempt, $worker_id, $incarnation, $state, $started_ms, $finished_ms, $records_in, $records_out,
      $shuffle_bytes_written, $shuffle_bytes_read, $spilled_bytes, $error, $counted, $committed, $result)
      ON CONFLICT (attempt_id) DO UPDATE SET job_id = excluded.job_id, task_id = excluded.task_id, stage_id = excluded.stage_id,
      partition = excluded.partition, attempt = excluded.attempt, worker_id = excluded.worker_id, incarnation = excluded.incarnation,
      state = excluded.state, started_ms = excluded.started_ms, finished_ms = excluded.finished_ms, records_in = excluded.records_in,
      records_out = excluded.records_out, shuffle_bytes_written = excluded.shuffle_bytes_written, shuffle_bytes_read = excluded.shuffle_bytes_read,
      spilled_bytes = excluded.spilled_bytes, error = excluded.error, counted = excluded.counted, committed = excluded.committed, result = excluded.result`)
    this.upsertWorker = this.db.prepare(`INSERT OR REPLACE INTO workers VALUES ($worker_id, $address, $incarnation,
      $slots, $status, $last_seen_ms, $disk)`)
    this.setReplicas = this.db.prepare(`UPDATE attempts SET result = json_set(result, '$.replicas', json($replicas))
      WHERE task_id = $task_id AND committed = 1 AND state = 'SUCCEEDED' AND result IS NOT NULL`)
    this.upsertOutput = this.db.prepare('INSERT OR REPLACE INTO outputs VALUES ($path, $job_id, $at_ms, $replicas, $parts)')
    this.upsertDataset = this.db.prepare('INSERT OR REPLACE INTO datasets VALUES ($name, $job_id, $at_ms, $record)')
    this.deleteDataset = this.db.prepare('DELETE FROM datasets WHERE name = ?')
    this.insertOverwrite = this.db.prepare('INSERT INTO overwrites VALUES ($path, $job_id, $submitted_ms, $at_ms)')
    this.pruneOverwrites = this.db.prepare('DELETE FROM overwrites WHERE at_ms < $since_ms OR rowid <= (SELECT MAX(rowid) FROM overwrites) - $keep')
    this.deleteAttempts = this.db.prepare('DELETE FROM attempts WHERE job_id = ?')
    this.deleteJob = this.db.prepare('DELETE FROM jobs WHERE job_id = ?')
    this.keepSeq = this.db.prepare(`INSERT INTO counters VALUES ('pruned_seq', ?1)
      ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)`)
    // Prepared once: db.transaction() prepares BEGIN and COMMIT again on each call, and the master
    // commits once per turn of its event loop.
    this.begin = this.db.prepare('BEGIN')
    this.end = this.db.prepare('COMMIT')
    this.rollback = this.db.prepare('ROLLBACK')
  }

  /** Writes one step's changes in one transaction. `status` is the job's JobStatus snapshot. */
  commit(created: readonly JobRun[], jobs: readonly { job: JobRun; status: string }[], attempts: readonly AttemptRun[], workers: readonly WorkerRun[],
    overwrites: readonly Overwrite[] = [], keepOverwrites?: { sinceMs: number; count: number }, outputs: readonly OutputRecord[] = [],
    replicas: ReadonlyMap<string, readonly Replica[]> = new Map(), datasets: ReadonlyMap<string, DatasetRecord | null> = new Map()): void {
    if (created.length + jobs.length + attempts.length + workers.length + overwrites.length + outputs.length + replicas.size + datasets.size === 0) return
    this.begin.run()
    try {
      for (const j of created) {
        const plan: StoredPlan = { stages: j.stages.map(s => ({ plan: s.plan, splits: s.splits, ...(s.holders === undefined ? {} : { holders: s.holders }), ...(s.lineage === undefined ? {} : { lineage: s.lineage }) })), outputs: j.outputs,
          ...(j.inputProblems === undefined ? {} : { inputProblems: [...j.inputProblems] }) }
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
        this.upsertWorker.run({ worker_id: w.id, address: w.address, incarnation: w.incarnation, slots: w.slots, status: w.status, last_seen_ms: w.lastSeenMs, disk: w.disk })
      }
      // An output's parts as one JSON text: read and written whole, never queried part by part.
      for (const o of outputs) this.upsertOutput.run({ path: o.path, job_id: o.job, at_ms: o.atMs, replicas: o.replicas, parts: JSON.stringify(o.parts) })
      // A dataset's blocks as one JSON text, like an output's parts.
      for (const [name, d] of datasets) {
        if (d === null) this.deleteDataset.run(name)
        else this.upsertDataset.run({ name, job_id: d.job, at_ms: d.atMs, record: JSON.stringify(d) })
      }
      for (const [task, r] of replicas) this.setReplicas.run({ task_id: task, replicas: JSON.stringify(r) })
      for (const o of overwrites) this.insertOverwrite.run({ path: o.path, job_id: o.job, submitted_ms: o.submittedMs, at_ms: o.atMs })
      if (overwrites.length > 0 && keepOverwrites !== undefined) this.pruneOverwrites.run({ since_ms: keepOverwrites.sinceMs, keep: keepOverwrites.count })
      this.end.run()
    } catch (e) {
      this.rollback.run()
      throw e
    }
  }

  /** Each job's id, state and times, without its status, request, plan and result (those can be large). */
  jobStates(): { job_id: string; state: string; submitted_ms: number; finished_ms: number | null }[] {
    return this.db.query('SELECT job_id, state, submitted_ms, finished_ms FROM jobs').all() as { job_id: string; state: string; submitted_ms: number; finished_ms: number | null }[]
  }

  /** One page of jobs, newest first: those of sequence number below `before` (or above `after`),
   *  `limit` at most; each also in `state` when given. Reads through the seq indexes. */
  jobPage(q: { state?: JobState | undefined; before?: number | undefined; after?: number | undefined; limit: number }): JobRow[] {
    const where: string[] = []
    const args: (string | number)[] = []
    if (q.state !== undefined) { where.push('state = ?'); args.push(q.state) }
    if (q.before !== undefined) { where.push('seq < ?'); args.push(q.before) }
    if (q.after !== undefined) { where.push('seq > ?'); args.push(q.after) }
    const sql = `SELECT job_id, seq, state, status FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY seq ${q.after !== undefined ? 'ASC' : 'DESC'} LIMIT ?`
    const rows = this.db.query(sql).all(...args, q.limit) as JobRow[]
    return q.after !== undefined ? rows.reverse() : rows
  }

  /** Whether a job (in `state`, when given) exists beyond `seq`, older (`<`) or newer (`>`). */
  hasJobBeyond(seq: number, dir: '<' | '>', state?: JobState): boolean {
    const sql = `SELECT 1 FROM jobs WHERE seq ${dir} ? ${state === undefined ? '' : 'AND state = ?'} LIMIT 1`
    return this.db.query(sql).get(...(state === undefined ? [seq] : [seq, state])) !== null
  }

  countJobs(state?: JobState): number {
    const row = state === undefined
      ? this.db.query('SELECT COUNT(*) AS n FROM jobs').get()
      : this.db.query('SELECT COUNT(*) AS n FROM jobs WHERE state = ?').get(state)
    return (row as { n: number }).n
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

  /** The catalog of outputs (catalog.ts). */
  outputs(): OutputRecord[] {
    return (this.db.query('SELECT * FROM outputs').all() as { path: string; job_id: string; at_ms: number; replicas: number; parts: string }[])
      .map(r => ({ path: r.path, job: r.job_id as JobId, atMs: r.at_ms, replicas: r.replicas, parts: JSON.parse(r.parts) as OutputPart[] }))
  }

  /** The catalog of persisted datasets (catalog.ts). */
  datasets(): DatasetRecord[] {
    return (this.db.query('SELECT record FROM datasets').all() as { record: string }[]).map(r => JSON.parse(r.record) as DatasetRecord)
  }

  /** The highest job sequence number ever given, pruned jobs included. */
  maxSeq(): number {
    return (this.db.query(`SELECT MAX(COALESCE((SELECT MAX(seq) FROM jobs), 0),
      COALESCE((SELECT value FROM counters WHERE name = 'pruned_seq'), 0)) AS n`).get() as { n: number }).n
  }

  /** Every attempt of a job as the API shows it, in (stage, partition, attempt) order. */
  tasks(id: JobId): TaskInfo[] {
    return this.attemptsOf(id).map(taskInfo)
  }

  /** One page of a job's attempts in (stage, partition, attempt) order: those after the key `after`
   *  (or the last ones before `before`), `limit` at most, each also of `stage` and in `state` when
   *  given. Reads through the attempts_by_job index. */
  taskPage(id: JobId, q: AttemptFilter & { after?: AttemptKey | undefined; before?: AttemptKey | undefined; limit: number }): TaskInfo[] {
    const { where, args } = attemptWhere(id, q)
    if (q.after !== undefined) { where.push('(stage_id, partition, attempt) > (?, ?, ?)'); args.push(...q.after) }
    if (q.before !== undefined) { where.push('(stage_id, partition, attempt) < (?, ?, ?)'); args.push(...q.before) }
    const dir = q.before !== undefined && q.after === undefined ? 'DESC' : 'ASC'
    const rows = this.db.query(`SELECT * FROM attempts WHERE ${where.join(' AND ')}
      ORDER BY stage_id ${dir}, partition ${dir}, attempt ${dir} LIMIT ?`).all(...args, q.limit) as StoredAttempt[]
    if (dir === 'DESC') rows.reverse()
    return rows.map(taskInfo)
  }

  /** Whether an attempt matching the filter lies after (`>`) or before (`<`) the key. */
  hasTaskBeyond(id: JobId, key: AttemptKey, dir: '<' | '>', f: AttemptFilter): boolean {
    const { where, args } = attemptWhere(id, f)
    where.push(`(stage_id, partition, attempt) ${dir} (?, ?, ?)`)
    return this.db.query(`SELECT 1 FROM attempts WHERE ${where.join(' AND ')} LIMIT 1`).get(...args, ...key) !== null
  }

  countTasks(id: JobId, f: AttemptFilter): number {
    const { where, args } = attemptWhere(id, f)
    return (this.db.query(`SELECT COUNT(*) AS n FROM attempts WHERE ${where.join(' AND ')}`).get(...args) as { n: number }).n
  }

  /**
   * Removes ended jobs the cut names, oldest first, their attempts with them, in one transaction of
   * at most `maxJobs` jobs (and about `maxAttempts` attempt rows): each call holds the master's
   * thread only briefly, and the caller yields between calls. `more`: call again.
   */
  pruneJobs(cut: PruneCut, budget: { maxJobs: number; maxAttempts: number }): { jobs: number; attempts: number; more: boolean } {
    if (cut.keepNewest === null && cut.endedBeforeMs === null) return { jobs: 0, attempts: 0, more: false }
    // The sequence number of the newest ended job past the count limit: it and older ones go.
    const last = cut.keepNewest === null ? null : this.db.query(`SELECT seq FROM jobs WHERE state IN (${ENDED})
      ORDER BY seq DESC LIMIT 1 OFFSET ?`).get(cut.keepNewest) as { seq: number } | null
    const seqCut = last?.seq ?? -1
    const before = cut.endedBeforeMs ?? -Infinity
    const victims = this.db.query(`SELECT job_id, seq FROM jobs WHERE state IN (${ENDED})
      AND (seq <= ? OR COALESCE(finished_ms, submitted_ms) < ?) ORDER BY seq LIMIT ?`).all(seqCut, before, budget.maxJobs + 1) as { job_id: string; seq: number }[]
    let jobs = 0
    let attempts = 0
    this.begin.run()
    try {
      for (const v of victims.slice(0, budget.maxJobs)) {
        attempts += this.deleteAttempts.run(v.job_id).changes
        this.deleteJob.run(v.job_id)
        // Job numbers go on from the highest ever given, even once that job is gone.
        this.keepSeq.run(v.seq)
        jobs++
        if (attempts >= budget.maxAttempts) break
      }
      this.end.run()
    } catch (e) {
      this.rollback.run()
      throw e
    }
    return { jobs, attempts, more: victims.length > jobs }
  }

  close(): void { this.db.close() }
}
