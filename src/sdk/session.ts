// A session is the SDK's handle on a cluster: `await connect(url, { token })` for a running
// master, `await local({ workers: 2 })` for an embedded one it starts and stops. It makes source
// datasets and runs the jobs that actions build: submit, follow, fetch the result. Between jobs it
// keeps the cluster it talks to and the names of the datasets its jobs persisted without a name
// from the program (freed when it stops, as Spark frees cached RDDs with its context).
import { ClientError, MasterClient } from '../api/client'
import type { DatasetInfo } from '../api/datasets'
import type { JobError, JobRequest, JobResult, JobState, JobStatus } from '../api/jobs'
import { opsOf, progressPrinter } from '../cli/progress'
import { startLocalCluster } from '../roles/local'
import { DatasetImpl, asDataset, type Runner } from './dataset'
import { defaultDatasetName, type Persisting } from './plan'
import type { ActionOptions, Dataset, DatasetOf, KeyedDataset } from './types'

/** A job that ended FAILED or CANCELLED; `error` names the node, the message and the record. */
export class JobFailedError extends Error {
  override readonly name = 'JobFailedError'
  constructor(readonly jobId: string, readonly state: JobState, readonly error: JobError | null) {
    super(`job ${jobId} ${state}` + (error === null ? '' : `: ${error.message}` +
      (error.node_id === null ? '' : ` (node ${error.node_id}${error.task_id === null ? '' : `, task ${error.task_id}`})`) +
      (error.record === null ? '' : `\n  record: ${error.record}`)))
  }
}

export type SessionOptions = {
  /** the cluster's token (connect: default MINISPARK_TOKEN; local: default a random one) */
  token?: string
  /** show progress for every action (an action's own option wins) */
  progress?: boolean
  /** how often to ask the master for the job's status while waiting */
  pollMs?: number
}

export type LocalOptions = SessionOptions & {
  /** worker processes (default 2) */
  workers?: number
  /** task threads per worker (default 1) */
  slots?: number
  /** each worker's memory budget for intermediate data, such as "512MiB" (default "1GiB") */
  maxMem?: string
  /** the directory paths are relative to (default: the current directory) */
  dataDir?: string
  /** how long a silent worker stays alive, such as "10s" (default: the master's) */
  heartbeatTimeout?: string
  /** the minispark executable that runs the master and workers (default: MINISPARK_BIN, else
   *  `minispark` on the PATH; inside the Mini-Spark repository, its own CLI) */
  bin?: string
}

/** What a session owns of a local cluster: its token, and how to stop it. */
export type OwnedCluster = { readonly token: string; stop(): Promise<void> }

export type CsvOptions = { delimiter?: string; multiline?: boolean; name?: string }
/** How a built-in CSV read parses a column from the line's bytes (read_csv "types"). */
export type CsvType = 'string' | 'number' | 'int' | 'cents'
/** A typed column's value: numbers parsed from the bytes, null for an empty field. */
type CsvValue<T> = T extends 'string' ? string : number | null
/** A row of the columns `K`, those named in `T` parsed as their type. */
export type CsvRow<K extends string, T> = { [P in K]: P extends keyof T ? CsvValue<T[P]> : string }

export class Session implements Runner {
  constructor(readonly client: MasterClient, private readonly o: SessionOptions, private readonly cluster: OwnedCluster | null) {}

  // Unnamed kept datasets are called "<node id>.<tag>-<n>": the tag tells this session's apart
  // from another program's on the same cluster, n the iterations of a loop that keeps one node.
  private readonly tag = globalThis.crypto.randomUUID().slice(0, 6)
  private seq = 0
  private readonly unnamed = new Set<string>()

  /** The master's URL: its web UI is there, Swagger at /swagger. */
  get url(): string { return this.client.base }

  /** The cluster's token: for a local() cluster, the random one it was given (to connect() to
   *  it from elsewhere, or to paste into its web UI). */
  get token(): string | undefined { return this.cluster?.token ?? this.o.token }

  /** Every line of the files a path, directory or glob names (relative to the workers' data dir). */
  textFile(path: string, opts?: { withPath?: false; name?: string }): Dataset<string>
  textFile(path: string, opts: { withPath: true; name?: string }): KeyedDataset<string, string>
  textFile(path: string, opts: { withPath?: boolean; name?: string } = {}): Dataset<string> | KeyedDataset<string, string> {
    return asDataset(DatasetImpl.source(this, 'read_text', 'textFile', { path, ...(opts.withPath ? { with_path: true } : {}) }, opts.name))
  }

  /** Each line of JSON Lines files, parsed. Give the record type: `ms.jsonl<Order>('orders/*.jsonl')`. */
  jsonl<T = unknown>(path: string, opts: { name?: string } = {}): DatasetOf<T> {
    return asDataset(DatasetImpl.source(this, 'read_jsonl', 'jsonl', { path }, opts.name))
  }

  /**
   * Rows of CSV files: an object keyed by the header, or (header: false) an array; every value a
   * string. Give the header's columns for typed rows: `ms.csv<'id' | 'country'>('shop/customers.csv')`
   * is a Dataset<{ id: string; country: string }>. Every row has every column of its file's header
   * (a row of another width fails the job with its file and line); the type trusts the columns
   * named here to be in the header.
   *
   * `columns` keeps only those header columns, and `types` parses columns from the line's bytes
   * ('number', 'int', 'cents' as integer hundredths; an empty field gives null), both as a
   * built-in that makes no string of the fields it drops:
   * `ms.csv('orders.csv', { columns: ['customer_id', 'amount'], types: { amount: 'cents' } })` is a
   * Dataset<{ customer_id: string; amount: number | null }>. A file whose header lacks a column, or
   * a value its type cannot parse, fails the job naming the file, line and column.
   */
  csv<const K extends string, const T extends { [P in K]?: CsvType } = {}>(path: string, opts: CsvOptions & { header?: true; columns: readonly K[]; types?: T }): Dataset<CsvRow<K, T>>
  csv<C extends string = string>(path: string, opts: CsvOptions & { header?: true; types: { [P in C]?: CsvType } }): Dataset<{ [K in C]: string | number | null }>
  csv<C extends string = string>(path: string, opts?: CsvOptions & { header?: true }): Dataset<{ [K in C]: string }>
  csv(path: string, opts: CsvOptions & { header: false }): Dataset<string[]>
  csv(path: string, opts: CsvOptions & { header?: boolean; columns?: readonly string[]; types?: { [c: string]: CsvType | undefined } } = {}): Dataset<any> {
    const types = opts.types === undefined ? undefined
      : Object.fromEntries(Object.entries(opts.types).flatMap(([c, t]): [string, CsvType][] => t === undefined ? [] : [[c, t]]))
    return asDataset(DatasetImpl.source(this, 'read_csv', 'csv', {
      path, ...(opts.header === false ? { header: false } : {}),
      ...(opts.delimiter === undefined ? {} : { delimiter: opts.delimiter }),
      ...(opts.multiline === undefined ? {} : { multiline: opts.multiline }),
      ...(opts.columns === undefined ? {} : { columns: [...opts.columns] }),
      ...(types === undefined ? {} : { types }),
    }, opts.name))
  }

  /**
   * The dataset a job persisted under `name` (`ds.persist({ name })` in this program or another,
   * or a persist sink of a job file), read where the workers hold it. Give the record type:
   * `ms.dataset<[number, number[]]>('links')`. `unpersist()` on it deletes the dataset.
   */
  dataset<T = unknown>(name: string): DatasetOf<T> {
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) || name.length > 128) {
      throw new TypeError(`dataset: "${String(name)}" is not a dataset name (1 to 128 letters, digits, _ . -, not starting with _ . -)`)
    }
    const d = DatasetImpl.source(this, 'read_dataset', 'dataset', { name })
    d.node.keep = { level: 'memory_and_disk', named: true, name, dataset: name }
    return asDataset(d)
  }

  /** The datasets kept on the cluster (GET /datasets): where each partition is, bytes, state. */
  datasets(): Promise<DatasetInfo[]> { return this.client.datasets() }

  datasetName(nodeId: string): string {
    return `${defaultDatasetName(nodeId).slice(0, 100)}.${this.tag}-${++this.seq}`
  }

  persisted(kept: readonly Persisting[]): void {
    for (const p of kept) if (!p.keep.named) this.unnamed.add(p.name)
  }

  async unpersist(name: string): Promise<void> {
    this.unnamed.delete(name)
    try {
      await this.client.deleteDataset(name)
    } catch (e) {
      if (!(e instanceof ClientError && e.status === 404)) throw e
    }
  }

  async datasetStates(): Promise<Map<string, 'AVAILABLE' | 'LOST'>> {
    return new Map((await this.client.datasets()).map(d => [d.name, d.state]))
  }

  /** Submits the job, waits for its end and returns its result; throws JobFailedError if it failed. */
  async run(job: JobRequest, o: ActionOptions = {}): Promise<JobResult> {
    const id = await this.client.submit(job)
    const show = o.progress ?? this.o.progress ?? false
    const print = show ? progressPrinter({ ops: opsOf(job) }) : undefined
    const onStatus = (s: JobStatus): void => { print?.(s); o.onStatus?.(s) }
    const final = await this.client.waitDone(id, { timeoutMs: o.timeoutMs ?? 365 * 24 * 3600_000, pollMs: this.o.pollMs ?? 100, onStatus })
    if (final.state !== 'SUCCEEDED') throw new JobFailedError(id, final.state, final.error)
    return this.client.result(id)
  }

  /** Frees the datasets this session kept without a name, and stops the processes of a local
   *  session. Named ones (persist({ name })) stay on the cluster until DELETE /datasets/:name. */
  async stop(): Promise<void> {
    if (this.cluster === null) {
      // Best effort, one at a time: a master that is gone already has nothing to free.
      for (const name of [...this.unnamed]) {
        let timer: ReturnType<typeof setTimeout> | undefined
        const late = new Promise<void>(resolve => { timer = setTimeout(resolve, 10_000) })
        await Promise.race([this.unpersist(name).catch(() => undefined), late])
        clearTimeout(timer)
      }
    }
    this.unnamed.clear()
    await this.cluster?.stop()
  }
}

// `await using ms = await local()` stops the cluster at the end of the block where the runtime
// has the symbol (Bun, Node 20.4+). Set here rather than declared in the class: a declared
// [Symbol.asyncDispose] would make the SDK's types need lib "esnext.disposable" in every project.
const asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose
if (asyncDispose !== undefined) {
  Object.defineProperty(Session.prototype, asyncDispose, { value(this: Session) { return this.stop() }, configurable: true, writable: true })
}

/** A session on a running master. Checks that the master answers (and accepts the token). */
export async function connect(url: string, o: SessionOptions = {}): Promise<Session> {
  const token = o.token ?? (process.env.MINISPARK_TOKEN?.trim() || undefined)
  const client = new MasterClient(url.replace(/\/+$/, ''), token)
  try {
    await client.workers()
  } catch (e) {
    if (e instanceof ClientError && e.code === 'UNAUTHORIZED') throw new ClientError(e.code, `${e.message} (connect(url, { token }))`, e.status)
    throw e
  }
  return new Session(client, o, null)
}

/** Starts a master and worker processes on loopback, and a session on them; stop() ends them. */
export async function local(o: LocalOptions = {}): Promise<Session> {
  // The roles are started with Bun's process API (their stdin pipe ends them with this program).
  if (typeof Bun === 'undefined') {
    throw new Error('local() starts its cluster under Bun only: under Node, start one (`minispark local JOB --keep`, ' +
      'or `minispark master` and `minispark worker`) and use connect(url, { token })')
  }
  const bin = o.bin ?? (process.env.MINISPARK_BIN?.trim() || undefined)
  // The published package has no CLI source beside it: it runs the minispark executable.
  const command = bin !== undefined ? [bin] : process.env.MINISPARK_SDK_BUNDLE === '1' ? ['minispark'] : undefined
  if (command !== undefined && Bun.which(command[0]!) === null) {
    throw new Error(`local() runs the minispark executable, and "${command[0]}" was not found: build it (npm run build in the ` +
      'Mini-Spark repository gives dist/minispark) and pass local({ bin }) or set MINISPARK_BIN, or put it on the PATH')
  }
  const cluster = await startLocalCluster({
    ...(command === undefined ? {} : { command }),
    workers: o.workers ?? 2, slots: o.slots ?? 1, maxMem: o.maxMem ?? '1GiB', dataDir: o.dataDir ?? '.',
    ...(o.heartbeatTimeout === undefined ? {} : { heartbeatTimeout: o.heartbeatTimeout }),
    ...(o.token === undefined ? {} : { token: o.token }),
  })
  // The program ends when its own work does, not when its cluster does: the processes do not
  // hold it open, and if it ends without stop() they are killed and the temp dir removed.
  for (const r of cluster.roles) r.proc.unref()
  process.once('exit', cluster.killNow)
  const stop = cluster.stop
  const owned: OwnedCluster = { token: cluster.token, stop: async () => { process.off('exit', cluster.killNow); await stop() } }
  return new Session(cluster.client, o, owned)
}
