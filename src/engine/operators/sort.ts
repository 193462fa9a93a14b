// sort: a total order across reduce partitions, the way Spark's sortByKey does it.
//   1. A sample stage runs the sort's upstream pipeline over the same input and keeps a reservoir
//      sample of the sort keys of each task (KeySampler), reported to the master.
//   2. The master cuts the key range at weighted quantiles of the samples (boundsFromSamples).
//   3. The map side sends each record to the partition whose range holds its key (rangePartition).
//   4. Each reduce partition sorts its records (SpillingSorter, spill/external.ts; string records
//      by string keys as bytes, spill/string-sort.ts). Part 0 holds the smallest keys, or
//      the largest with `descending`, so the parts' concatenation is sorted.
// Pure: no I/O, and the sampler's randomness is seeded, so a re-run samples the same keys.
import type { NodeSpec } from '../../api/jobs'
import { compareKeys } from '../keys'
import { describeRecord, isPair, UdfError, udfError } from '../records'
import { compileUdf, type Udf } from '../udf'

/** The key a record sorts by: `key(record)` when the sort has a key function, else the key of a
 *  keyed record [key, value], else the record itself. */
export type SortKeyOf = (r: unknown) => unknown

export function sortKeyFunction(node: NodeSpec, params: Readonly<Record<string, unknown>>): SortKeyOf {
  if (node.by !== undefined) return builtinSortKey(node.id, node.by)
  if (node.key === undefined) return r => isPair(r) ? r[0] : r
  let fn: Udf
  try {
    fn = compileUdf(node.key, params)
  } catch (e) {
    throw new UdfError(node.id, `key of node "${node.id}" cannot be compiled: ${(e as Error).message}`, '')
  }
  return r => fn(r)
}

/** A built-in key ("by"): a field of an object, or characters of a string, read with no user
 *  function; the same value the twin key function returns. */
function builtinSortKey(nodeId: string, by: NonNullable<NodeSpec['by']>): SortKeyOf {
  if ('field' in by) {
    const field = by.field
    return r => {
      if (typeof r !== 'object' || r === null || !Object.hasOwn(r, field)) throw new UdfError(nodeId, `sort by field: the record has no field "${field}": ${describeRecord(r).slice(0, 80)}`, describeRecord(r))
      return (r as Record<string, unknown>)[field]
    }
  }
  const [start, end] = by.slice
  return r => {
    if (typeof r !== 'string') throw new UdfError(nodeId, `sort by slice needs strings (lines), but got ${describeRecord(r).slice(0, 80)}`, describeRecord(r))
    return r.slice(start, end)
  }
}

/** Keys of a batch, with the failing record named when the key function throws. */
export function keysOf(nodeId: string, keyOf: SortKeyOf, batch: readonly unknown[]): unknown[] {
  const keys = new Array<unknown>(batch.length)
  let i = 0
  try {
    for (; i < batch.length; i++) keys[i] = keyOf(batch[i])
  } catch (e) { throw udfError(nodeId, e, batch[i]) }
  return keys
}

// ---- sampling ----------------------------------------------------------------------------------

/** Keys sampled per map task: Spark's rule, 20 keys per reduce partition over-sampled 3× and
 *  shared among the map tasks, capped at a million keys in all, and at MAX_SAMPLE_PER_TASK per task
 *  so that a task's report stays far below the master's 16 MiB body limit. */
export function sampleSizePerTask(sortPartitions: number, mapTasks: number): number {
  const total = Math.min(20 * Math.max(1, sortPartitions), 1_000_000)
  return Math.min(MAX_SAMPLE_PER_TASK, Math.max(1, Math.ceil((3 * total) / Math.max(1, mapTasks))))
}

export const MAX_SAMPLE_PER_TASK = 20_000
/** Sampled string keys are cut to this many characters (see detach). */
export const SAMPLE_KEY_CHARS = 128

/** A uniform reservoir sample (Algorithm R) of the keys pushed, with a seeded generator. */
export class KeySampler {
  count = 0
  readonly sample: unknown[] = []
  private state: number

  constructor(private readonly size: number, seed: number) {
    this.state = (seed * 0x9e3779b1 + 0x6d2b79f5) >>> 0
  }

  pushKeys(keys: readonly unknown[]): void {
    for (let i = 0; i < keys.length; i++) {
      const n = this.count++
      if (n < this.size) this.sample.push(detach(keys[i]))
      else {
        const j = Math.floor(this.random() * (n + 1))
        if (j < this.size) this.sample[j] = detach(keys[i])
      }
    }
  }

  // mulberry32: small, fast, and the same on every machine.
  private random(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// A key cut from an input line is a slice that keeps the line's whole decoded chunk alive (see
// lines.ts); a sample holds keys for the whole task, so it keeps copies instead. Long strings are
// cut: a bound only has to be some value of the key order, and a prefix is one, so cutting keeps
// the sort correct and a sample of long lines small (it travels in the task's report).
function detach(k: unknown): unknown {
  // Flattening the concatenation copies the characters into a new string.
  if (typeof k === 'string') return (' ' + k.slice(0, SAMPLE_KEY_CHARS)).slice(1)
  if (Array.isArray(k)) return k.map(detach)
  if (typeof k === 'object' && k !== null) return JSON.parse(JSON.stringify(k)) as unknown
  return k
}

/**
 * Upper bounds (inclusive) of reduce partitions 0..k-1 with k <= partitions - 1, strictly
 * increasing: keys at the weighted quantiles of the samples. Each task's sampled keys weigh
 * count / sample size, so a task that saw more records counts more. Equal keys collapse, so a
 * heavy key gets a partition to itself and fewer bounds may come back (later partitions stay
 * empty), as in Spark's RangePartitioner.
 */
export function boundsFromSamples(samples: readonly { keys: readonly unknown[]; count: number }[], partitions: number): unknown[] {
  if (partitions <= 1) return []
  const weighted: { key: unknown; weight: number }[] = []
  let total = 0
  for (const s of samples) {
    if (s.keys.length === 0) continue
    const weight = s.count / s.keys.length
    for (const key of s.keys) { weighted.push({ key, weight }); total += weight }
  }
  if (weighted.length === 0) return []
  weighted.sort((a, b) => compareKeys(a.key, b.key))
  const step = total / partitions
  const bounds: unknown[] = []
  let cumulative = 0
  let target = step
  for (const { key, weight } of weighted) {
    cumulative += weight
    if (cumulative < target) continue
    if (bounds.length === 0 || compareKeys(key, bounds[bounds.length - 1]) > 0) {
      bounds.push(key)
      if (bounds.length === partitions - 1) break
    }
    while (target <= cumulative) target += step
  }
  return bounds
}

/** The partition whose range holds the key: the first i with key <= bounds[i], else bounds.length. */
export function rangePartition(key: unknown, bounds: readonly unknown[]): number {
  let lo = 0
  let hi = bounds.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareKeys(key, bounds[mid]) > 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Map side: the reduce partition of each record of a batch. With `descending`, range i goes to
 *  partition bounds.length - i, so part 0 holds the largest keys. */
export function rangePartitionsOf(nodeId: string, keyOf: SortKeyOf, batch: readonly unknown[], bounds: readonly unknown[], descending: boolean): Uint32Array {
  const keys = keysOf(nodeId, keyOf, batch)
  const parts = new Uint32Array(batch.length)
  for (let i = 0; i < keys.length; i++) {
    const p = rangePartition(keys[i], bounds)
    parts[i] = descending ? bounds.length - p : p
  }
  return parts
}
