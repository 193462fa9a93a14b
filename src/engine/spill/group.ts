// Values grouped by key at any size (group_by_key, and each side of a join that spills), with no
// bound on one key's values. In memory, a key's values are a list in a hash table. Past the budget,
// what is held goes to the work dir as a run of [key, value] pairs sorted by key: one pair per
// value, so a frame holds at most FRAME_RECORDS values however many one key has. At the end the
// runs are merged, and each key's values are gathered again under the budget; a key whose values
// alone outgrow it is written to a run of its own and handed on as a read-only list that reads the
// run as it is walked (spilledList), so the key is never held whole.
import { KeyMap, compareKeys } from '../keys'
import { sortedOrder } from '../sort-order'
import { Reservation, estimateBytes, tableEntryBytes } from './budget'
import { mergeRuns, minRunBytes, type SpillContext } from './external'
import { readRunBatches, writeRun, type RunFile, type RunStore } from './runs'

type Pair = [unknown, unknown]
type Group = [unknown, unknown[]]

/** Held per key beyond its entry in the table (tableEntryBytes) and its values: the list. A new
 *  string key with one value measured 224 bytes resident (2 M keys, after a full collection). */
const LIST_BYTES = 32
/** Held per value beyond the value: its slot in the list. */
const VALUE_OVERHEAD = 8

const byKey = (a: Pair, b: Pair): number => compareKeys(a[0], b[0])

export class SpillingGrouper {
  private map = new KeyMap<Group>()
  private readonly runs: RunFile[] = []
  private readonly reservation: Reservation | null
  private readonly minRun: number

  constructor(private readonly spill: SpillContext | null) {
    this.reservation = spill === null ? null : new Reservation(spill.budget, spill.stepBytes)
    this.minRun = minRunBytes(spill)
  }

  get spilledRuns(): number { return this.runs.length }

  add(k: unknown, v: unknown): void {
    const held = this.map.get(k)
    let bytes = VALUE_OVERHEAD + estimateBytes(v)
    if (held === undefined) {
      this.map.set(k, [k, [v]])
      bytes += LIST_BYTES + tableEntryBytes(k)
    } else held[1].push(v)
    if (this.reservation !== null && !this.reservation.grow(bytes) && this.reservation.bytes >= this.minRun) this.spillNow()
  }

  /** Takes all the values of one key at once (the array becomes the grouper's). */
  addGroup(k: unknown, values: unknown[]): void {
    const held = this.map.get(k)
    let bytes = 0
    if (this.reservation !== null) for (let i = 0; i < values.length; i++) bytes += VALUE_OVERHEAD + estimateBytes(values[i])
    if (held === undefined) {
      this.map.set(k, [k, values])
      bytes += LIST_BYTES + tableEntryBytes(k)
    } else for (let i = 0; i < values.length; i++) held[1].push(values[i])
    if (this.reservation !== null && !this.reservation.grow(bytes) && this.reservation.bytes >= this.minRun) this.spillNow()
  }

  private spillNow(): void {
    const ctx = this.spill!
    const groups = sortedGroups(this.map)
    const run = writeRun(ctx.store, flatten(groups))
    // Emptied, not only dropped: JavaScriptCore scans the stack conservatively, and a stale pointer
    // to the map or the sorted list kept a budget's worth of values alive through the collection
    // below and beside the next budget's worth (one hot group's reduce at --max-mem 1GiB: 1296 MB
    // peak, 427 MB of heap still live after the spill's collection; emptied: 1029 MB, 10 MB).
    groups.length = 0
    this.map.clear()
    this.runs.push(run)
    this.reservation!.reset()
    ctx.onSpill(run.size)
    ctx.afterSpill?.()
  }

  /** Every key once with its values; sorted by key when anything was spilled, and then a key
   *  whose values outgrow the budget comes with a spilledList. */
  *groups(): Generator<Group> {
    if (this.runs.length === 0) {
      const map = this.map
      this.map = new KeyMap<Group>()
      yield* map.values()
      this.reservation?.reset()
      return
    }
    yield* gatherGroups(this.sortedPairs(), this.spill!)
  }

  /** Every [key, value] held or spilled, sorted by key; what is held is let go. */
  *sortedPairs(): Generator<Pair> {
    if (this.runs.length === 0) {
      const inMemory = flatten(sortedGroups(this.map))
      this.map = new KeyMap<Group>()
      yield* inMemory
      this.reservation?.reset()
      return
    }
    const ctx = this.spill!
    // What is held goes to disk first, as SpillingAggregator does: not held through the merge,
    // and its reservation is free for the groups gathered from it.
    if (this.map.size > 0) this.spillNow()
    yield* mergeRuns<Pair>(ctx, this.runs, byKey)
    for (const r of this.runs) ctx.store.remove(r)
    this.runs.length = 0
    this.reservation?.reset()
  }
}

function sortedGroups(map: KeyMap<Group>): Group[] {
  const groups = [...map.values()]
  const order = sortedOrder(groups.map(g => g[0]))
  const out = new Array<Group>(groups.length)
  for (let i = 0; i < order.length; i++) out[i] = groups[order[i]!]!
  return out
}

function* flatten(groups: Iterable<Group>): Generator<Pair> {
  for (const [k, vs] of groups) for (let i = 0; i < vs.length; i++) yield [k, vs[i]]
}

/**
 * Pairs sorted by key, gathered into one group per key. A group is held while the budget allows;
 * past it, the group's values (those held, then the rest as they come) go to a run of their own,
 * and the group comes as [key, spilledList(run)]. Such a run stays until the task's spill folder
 * is removed, since what reads the list downstream may keep it as long as the task runs; unless
 * `removeRuns` says the taker is done with a group when it asks for the next one.
 */
export function* gatherGroups(pairs: Iterator<Pair>, ctx: SpillContext, removeRuns = false): Generator<Group> {
  const reservation = new Reservation(ctx.budget, ctx.stepBytes)
  const minRun = minRunBytes(ctx)
  let head = pairs.next()
  while (!head.done) {
    const key = head.value[0]
    const values: unknown[] = []
    let spilled = false
    while (!head.done && compareKeys(head.value[0], key) === 0) {
      const v = head.value[1]
      values.push(v)
      head = pairs.next()
      if (!reservation.grow(VALUE_OVERHEAD + estimateBytes(v)) && reservation.bytes >= minRun) { spilled = true; break }
    }
    if (!spilled) {
      // Counted while the taker holds it: until it asks for the next group (or returns).
      try { yield [key, values] } finally { reservation.reset() }
      continue
    }
    // The key's values do not fit: the ones held, then the rest straight from the merge.
    let count = 0
    const rest = function* (): Generator<unknown> {
      for (let i = 0; i < values.length; i++) { count++; yield values[i] }
      values.length = 0
      while (!head.done && compareKeys(head.value[0], key) === 0) { count++; yield head.value[1]; head = pairs.next() }
    }
    const run = writeRun(ctx.store, rest())
    reservation.reset()
    ctx.onSpill(run.size)
    ctx.afterSpill?.()
    try { yield [key, spilledList(ctx.store, run, count, key)] } finally { if (removeRuns) ctx.store.remove(run) }
  }
}

/**
 * A read-only list of `length` values kept in a run: Array.isArray says true, and length, indices,
 * iteration and every non-mutating Array method (map, reduce, slice, JSON.stringify...) work,
 * reading the run front to back a frame at a time; reading backwards starts over from the front.
 * Changing it throws: copying it (`[...vs]`) makes an ordinary array, in memory.
 */
export function spilledList(store: RunStore, run: RunFile, length: number, key: unknown): unknown[] {
  let frames: Generator<unknown[]> | null = null
  let batch: unknown[] = []
  let start = 0   // index of batch[0]
  const at = (i: number): unknown => {
    if (i < start || frames === null) { frames = readRunBatches(store, run); batch = []; start = 0 }
    while (i >= start + batch.length) {
      start += batch.length
      const n = frames.next()
      if (n.done) return undefined
      batch = n.value
    }
    return batch[i - start]
  }
  const readOnly = (): never => {
    throw new TypeError(`the values of key ${JSON.stringify(key)?.slice(0, 100)} (${length}) are more than the worker's memory budget holds: they are read from disk and cannot be changed; copy them first ([...values]) if they fit in memory`)
  }
  const index = (p: string | symbol): number => {
    if (typeof p !== 'string') return -1
    const n = Number(p)
    return Number.isInteger(n) && n >= 0 && n < length && String(n) === p ? n : -1
  }
  return new Proxy<unknown[]>([], {
    get(target, p, receiver) {
      if (p === 'length') return length
      if (p === Symbol.iterator) return function* () { for (const b of readRunBatches(store, run)) yield* b }
      const i = index(p)
      if (i >= 0) return at(i)
      return Reflect.get(target, p, receiver)
    },
    has(target, p) { return index(p) >= 0 || Reflect.has(target, p) },
    ownKeys() { return [...Array.from({ length }, (_, i) => String(i)), 'length'] },
    getOwnPropertyDescriptor(target, p) {
      if (p === 'length') return { value: length, writable: true, enumerable: false, configurable: false }
      const i = index(p)
      if (i >= 0) return { value: at(i), writable: false, enumerable: true, configurable: true }
      return Reflect.getOwnPropertyDescriptor(target, p)
    },
    set: readOnly,
    defineProperty: readOnly,
    deleteProperty: readOnly,
    setPrototypeOf: readOnly,
  })
}
