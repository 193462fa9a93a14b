// The SDK's types: what a dataset holds flows through every call, and the operations on keys
// exist only on datasets of [key, value] pairs. Type-level only; dataset.ts implements them.
import type { JobRequest, JobStatus } from '../api/jobs'

/** Keys are strings, numbers or arrays of those; they are equal when their values are equal. */
export type Key = string | number | readonly Key[]

/** Values given with withParams: JSON, sent with the job, read on the workers as `params`. */
export type Params = Record<string, unknown>

/**
 * What a function may return as a record. Listing a pair among the choices makes TypeScript read an
 * array literal such as `[w, 1]` as the tuple `[string, number]`, so that `map(w => [w, 1])` gives a
 * keyed dataset without `as const`.
 */
export type RecordOut = readonly [unknown, unknown] | string | number | boolean | bigint | symbol | object | null | undefined

/** `1` as a value type would make `(a, b) => a + b` wrong; the value type is `number`. */
export type Widen<T> = T extends string ? string : T extends number ? number : T extends boolean ? boolean : T

/** A dataset of pairs whose first element is a Key is keyed; anything else is a plain dataset. */
export type DatasetOf<T, P extends Params = {}> =
  [T] extends [readonly [infer K extends Key, infer V]] ? KeyedDataset<Widen<K>, Widen<V>, P> : Dataset<T, P>

/** Options of every step: `name` is its node id (shown in the web UI, the status and errors),
 *  unique in a job; without one a step is called by its op and where the program made it. */
export type StepOptions = { name?: string }
export type WideOptions = StepOptions & { partitions?: number }
export type SortOptions = WideOptions & { descending?: boolean }
export type JoinHow = 'inner' | 'left' | 'right' | 'full'

/** Options every action takes. */
export type ActionOptions = {
  /** the job's name, shown by `minispark status` and the web UI */
  name?: string
  /** a live bar per stage on stderr (plain lines when stderr is not a terminal) */
  progress?: boolean
  /** reject if the job has not finished by then (default: no limit) */
  timeoutMs?: number
  /** per task; the job fails when one task has failed this often (default 4) */
  maxTaskAttempts?: number
  /** the default number of partitions of wide operations (default: 2 × the cluster's task slots) */
  partitions?: number
  /** called with every status seen while the job runs */
  onStatus?: (s: JobStatus) => void
}

export type WriteOptions = ActionOptions & { overwrite?: boolean }

/**
 * Where the workers keep a persisted dataset's partitions: `memory` (dropped under memory pressure,
 * and then computed again), `memory_and_disk` (moved to the work dir under pressure; cache()'s),
 * `disk` (written to the work dir).
 */
export type StorageLevel = 'memory' | 'memory_and_disk' | 'disk'

/** persist({ name }): a dataset other programs can read with session.dataset(name), kept until
 *  deleted; `replace` replaces one of that name (else its name taken is an error at the action). */
export type PersistOptions = { name?: string; level?: StorageLevel; replace?: boolean }

/**
 * What a record becomes on its way back from the workers: results travel as JSON, so a value
 * reads back as `JSON.parse(JSON.stringify(value))` would give it. A `Date` is its ISO string,
 * a `Map` or `Set` an empty object, an `undefined` field is gone (null in an array), and a
 * function or symbol is dropped; for the plain values records usually are (strings, numbers,
 * booleans, null, arrays, tuples and plain objects of them) it is the record's own type.
 */
export type AsJson<T> =
  T extends string | number | boolean | null ? T
  : T extends bigint ? never
  : T extends undefined | symbol | ((...a: never[]) => unknown) ? never
  : T extends { toJSON(...a: never[]): infer J } ? AsJson<J>
  : T extends ReadonlyMap<unknown, unknown> | ReadonlySet<unknown> ? Record<string, never>
  : T extends readonly unknown[] ? { -readonly [I in keyof T]: undefined extends T[I] ? AsJson<T[I]> | null : AsJson<T[I]> }
  : T extends object ? { -readonly [K in keyof T as T[K] extends ((...a: never[]) => unknown) | symbol ? never : K]: AsJson<T[K]> }
  : never

/** What a write action returns: where the files are and how many records they hold. */
export type Written = { path: string; files: number; records: number }

/**
 * A distributed collection of records of type T, computed lazily: nothing runs until an action
 * (collect, count, saveAsTextFile, saveAsJsonl). Functions travel to the workers as source text,
 * so they may use their own parameters, globals and `params`, nothing else of the program.
 */
export interface Dataset<T, P extends Params = {}> {
  /** One record out per record in. */
  map<U extends RecordOut>(fn: (x: T, params: P) => U, opts?: StepOptions): DatasetOf<U, P>
  /** Any number of records out per record in (an array, or any iterable such as a generator). */
  flatMap<U extends RecordOut>(fn: (x: T, params: P) => Iterable<U>, opts?: StepOptions): DatasetOf<U, P>
  /** Keeps the records the function accepts. */
  filter(fn: (x: T, params: P) => boolean, opts?: StepOptions): this
  /** `x` becomes `[fn(x), x]`. */
  keyBy<K extends Key>(fn: (x: T, params: P) => K, opts?: StepOptions): KeyedDataset<Widen<K>, T, P>
  /** Each distinct record once (a shuffle). */
  distinct(opts?: WideOptions): this
  /** A total order by the key the function gives (by the record itself without one). */
  sortBy(fn?: ((x: T, params: P) => Key) | null, opts?: SortOptions): this
  /** The records of this dataset and of the others (whose params join this one's). */
  union<Q extends Params = {}>(...others: Dataset<T, Q>[]): DatasetOf<T, P & Q>
  /** Adds values the functions can read as `params` (or as their last parameter). */
  withParams<Q extends Params>(params: Q): DatasetOf<T, P & Q>
  /** Ships functions of the program with the steps made from here on, which may call them by
   *  name: `.withHelpers({ tokensOf }).flatMap(l => tokensOf(l))`. Each travels as its source,
   *  so it may use its parameters, globals, `params` and other helpers, nothing else. */
  withHelpers(helpers: Record<string, (...args: never[]) => unknown>): this
  /** Names this node (the id shown in the web UI, the status and errors); must be unique in a job. */
  named(id: string): this

  /** persist('memory_and_disk'), as Spark's Dataset.cache(). */
  cache(): this
  /**
   * Keeps this dataset on the workers, lazily as in Spark: the first action that computes it keeps
   * its partitions where they were computed, and every later action of the session reads them
   * there instead of computing it again (`links.cache(); await links.count()` computes it now).
   * Without a name the session frees it when it stops; with `{ name }` it stays on the cluster for
   * session.dataset(name) until deleted. Marks the dataset itself: every dataset made from it, and
   * it, see the mark.
   */
  persist(level?: StorageLevel): this
  persist(opts: PersistOptions): this
  /** Forgets persist() and frees the kept partitions on every worker (later actions compute the
   *  dataset again); on a session.dataset(name), deletes that dataset. */
  unpersist(): Promise<void>

  /** All the records, in partition order (sorted after sortBy), as they come back through JSON (AsJson). */
  collect(opts?: ActionOptions & { limit?: number }): Promise<AsJson<T>[]>
  /** The number of records. */
  count(opts?: ActionOptions): Promise<number>
  /** A directory of part files, one record a line (strings as they are, the rest as JSON), and _SUCCESS. */
  saveAsTextFile(path: string, opts?: WriteOptions): Promise<Written>
  /** The same, every record as one JSON line. */
  saveAsJsonl(path: string, opts?: WriteOptions): Promise<Written>
  /** The JobRequest an action would submit (collect by default), for `minispark submit` or a look. */
  toJobRequest(sink?: SinkSpec, opts?: ActionOptions): JobRequest
}

/** The sink of toJobRequest: what an action adds at the end of the lineage. */
export type SinkSpec =
  | { op: 'collect'; limit?: number } | { op: 'count' }
  | { op: 'write_text' | 'write_jsonl'; path: string; overwrite?: boolean }

/** A dataset of [key, value] pairs: the operations that group or match by key. */
export interface KeyedDataset<K extends Key, V, P extends Params = {}> extends Dataset<[K, V], P> {
  /** One [key, value] per key, combining values with fn (first on each map task, then after the shuffle). */
  reduceByKey(fn: (a: V, b: V, params: P) => V, opts?: WideOptions): KeyedDataset<K, V, P>
  /** [key, [values...]] per key. */
  groupByKey(opts?: WideOptions): KeyedDataset<K, V[], P>
  /** [k, v] becomes [k, fn(v)]. */
  mapValues<W extends RecordOut>(fn: (v: V, params: P) => W, opts?: StepOptions): KeyedDataset<K, W, P>
  /** [key, [left, right]] for every matching pair; `how` keeps unmatched keys of one side or both, with null. */
  join<W, Q extends Params>(other: KeyedDataset<K, W, Q>, opts?: WideOptions & { how?: 'inner' }): KeyedDataset<K, [V, W], P & Q>
  join<W, Q extends Params>(other: KeyedDataset<K, W, Q>, opts: WideOptions & { how: 'left' }): KeyedDataset<K, [V, W | null], P & Q>
  join<W, Q extends Params>(other: KeyedDataset<K, W, Q>, opts: WideOptions & { how: 'right' }): KeyedDataset<K, [V | null, W], P & Q>
  join<W, Q extends Params>(other: KeyedDataset<K, W, Q>, opts: WideOptions & { how: 'full' }): KeyedDataset<K, [V | null, W | null], P & Q>
  leftOuterJoin<W, Q extends Params>(other: KeyedDataset<K, W, Q>, opts?: WideOptions): KeyedDataset<K, [V, W | null], P & Q>
  rightOuterJoin<W, Q extends Params>(other: KeyedDataset<K, W, Q>, opts?: WideOptions): KeyedDataset<K, [V | null, W], P & Q>
  fullOuterJoin<W, Q extends Params>(other: KeyedDataset<K, W, Q>, opts?: WideOptions): KeyedDataset<K, [V | null, W | null], P & Q>
  /** A total order by key. */
  sortByKey(opts?: SortOptions): this
}
