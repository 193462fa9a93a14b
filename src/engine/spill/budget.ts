// Memory accounting for intermediate data, shared by every task thread of a worker: one counter
// in a SharedArrayBuffer, updated with Atomics. A task reserves before it buffers and releases
// when it spills or ends. Pure: no I/O, no clock.

export interface MemoryBudget {
  /** Takes `bytes` more for this task; false means: spill what you hold, then release it. */
  tryReserve(bytes: number): boolean
  /** Gives back bytes this task held. */
  release(bytes: number): void
  /** Bytes this task holds now. */
  readonly holding: number
}

/**
 * Counter layout: Int32 0 holds the KiB reserved by all tasks of the worker; Int32 1 + i the KiB
 * held by the thread on lane i. A thread can end without releasing (terminated, crashed, or its
 * code called process.exit), so what it held is also written down per lane, and the main thread
 * takes a lane's share back from the total once that thread is gone (reclaimLane).
 */
export function newBudgetBuffer(lanes = 0): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (1 + lanes))
}

/** Lanes of a buffer: how many threads can hold budget at once. */
export const budgetLanes = (sab: SharedArrayBuffer): number => sab.byteLength / 4 - 1

/** KiB reserved now by all tasks sharing the buffer (the worker's main thread reads this). */
export function reservedBytes(sab: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(sab), 0) * 1024
}

/** Bytes held now by the thread on `lane`. */
export function laneBytes(sab: SharedArrayBuffer, lane: number): number {
  return Atomics.load(new Int32Array(sab), 1 + lane) * 1024
}

/**
 * Gives back to the total whatever the lane's thread still held, and empties the lane; returns the
 * bytes. Only once that thread is gone (its close event): a live thread could still release, and
 * then give back twice.
 */
export function reclaimLane(sab: SharedArrayBuffer, lane: number): number {
  const counter = new Int32Array(sab)
  const kib = Atomics.exchange(counter, 1 + lane, 0)
  // A thread stopped inside tryReserve or release may leave its lane up to one step above what it
  // added to the total (the lane is raised first and lowered last): never take the total below 0.
  for (;;) {
    const now = Atomics.load(counter, 0)
    if (Atomics.compareExchange(counter, 0, now, Math.max(0, now - kib)) === now) return kib * 1024
  }
}

/**
 * Memory pressure, told by the worker's main thread to its task threads: an Int32 generation
 * that the main thread raises when the process's resident size is past its mark, and an Int32 set
 * while the worker is paused for it (the squeeze). Estimates are
 * only estimates (keys, garbage, buffers in flight are not all counted): the resident size is
 * what bounds the process, and a raise is how it reaches a running task.
 */
export function newPressureBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(8)
}

/** While the worker is paused for its resident size, its tasks together hold at most this share
 *  of the spill threshold. A raise makes each task spill once, and then its table fills up again
 *  to the same size within a second; what bounds the resident size while it stays high is how
 *  much the tasks may hold meanwhile. */
export const SQUEEZED_SHARE = 0.5

/** Sets or clears the squeeze (SQUEEZED_SHARE) for every task sharing `sab`. */
export function setSqueeze(sab: SharedArrayBuffer, on: boolean): void {
  Atomics.store(new Int32Array(sab), 1, on ? 1 : 0)
}

/** Tells every task sharing `sab` to spill what it holds, once, at its next reservation. */
export function raisePressure(sab: SharedArrayBuffer): number {
  return Atomics.add(new Int32Array(sab), 0, 1) + 1
}

/**
 * A task's view of the shared counter. A reservation fails once the worker's tasks together would
 * pass `spillAtBytes`, unless this task holds less than `floorBytes`: every task keeps a small
 * working set, so that one task's spilling cannot starve another into spilling record by record.
 * With a pressure buffer, a reservation also fails once for each raise of its generation seen
 * after this budget was made (the same floor applies): a task spills once per raise, however often
 * it reserves, so that a resident size the allocator keeps high cannot make it spill again and again.
 */
export class SharedBudget implements MemoryBudget {
  private readonly counter: Int32Array
  private readonly limitKiB: number
  private readonly squeezedKiB: number
  private heldKiB = 0
  /** index of this thread's own counter in `counter`; -1: the buffer has no lanes */
  private readonly lane: number
  private readonly pressure: Int32Array | null
  /** the last pressure generation this task has answered */
  private seenPressure: number

  constructor(sab: SharedArrayBuffer, spillAtBytes: number, private readonly floorBytes: number, lane?: number, pressure?: SharedArrayBuffer) {
    this.counter = new Int32Array(sab)
    this.limitKiB = Math.floor(spillAtBytes / 1024)
    this.squeezedKiB = Math.floor(SQUEEZED_SHARE * this.limitKiB)
    if (lane !== undefined && (lane < 0 || lane >= budgetLanes(sab))) throw new RangeError(`budget lane ${lane} is not in the buffer`)
    this.lane = lane === undefined ? -1 : 1 + lane
    this.pressure = pressure === undefined ? null : new Int32Array(pressure)
    // A raise before this task began is not this task's to answer: what it held then was not its own.
    this.seenPressure = this.pressure === null ? 0 : Atomics.load(this.pressure, 0)
  }

  get holding(): number { return this.heldKiB * 1024 }

  /** Answers a pressure raise not seen yet: true when this task must spill now. */
  private pressed(): boolean {
    if (this.pressure === null) return false
    const gen = Atomics.load(this.pressure, 0)
    if (gen === this.seenPressure) return false
    this.seenPressure = gen
    return this.holding >= this.floorBytes
  }

  tryReserve(bytes: number): boolean {
    const kib = Math.ceil(bytes / 1024)
    if (this.pressed()) return false
    // The lane is raised before the total and lowered after it, so that a thread stopped between
    // the two leaves the lane high, never the total: reclaimLane then gives back all of it.
    if (this.lane > 0) Atomics.add(this.counter, this.lane, kib)
    const limit = this.pressure !== null && Atomics.load(this.pressure, 1) === 1 ? this.squeezedKiB : this.limitKiB
    for (;;) {
      const now = Atomics.load(this.counter, 0)
      if (now + kib > limit && this.holding >= this.floorBytes) {
        if (this.lane > 0) Atomics.sub(this.counter, this.lane, kib)
        return false
      }
      if (Atomics.compareExchange(this.counter, 0, now, now + kib) === now) {
        this.heldKiB += kib
        return true
      }
    }
  }

  release(bytes: number): void {
    const kib = Math.min(this.heldKiB, Math.ceil(bytes / 1024))
    this.heldKiB -= kib
    Atomics.sub(this.counter, 0, kib)
    if (this.lane > 0) Atomics.sub(this.counter, this.lane, kib)
  }

  /** Gives back everything this task holds (its end, or a failure). */
  releaseAll(): void { this.release(this.holding) }
}

/** No limit: for tests and for code paths outside a worker. */
export class UnlimitedBudget implements MemoryBudget {
  holding = 0
  tryReserve(bytes: number): boolean { this.holding += bytes; return true }
  release(bytes: number): void { this.holding = Math.max(0, this.holding - bytes) }
}

/**
 * Rough heap size of a record, for accounting: JSC keeps Latin-1 strings at a byte a character,
 * others at two; arrays and objects pay a header and a slot per element. It errs on the high side
 * so that the resident size stays under the budget.
 */
export function estimateBytes(v: unknown): number {
  switch (typeof v) {
    case 'string': return 40 + v.length * 2
    case 'number': case 'boolean': case 'undefined': return 16
    case 'object': {
      if (v === null) return 16
      if (Array.isArray(v)) {
        let n = 32 + 8 * v.length
        for (let i = 0; i < v.length; i++) n += estimateBytes(v[i])
        return n
      }
      let n = 64
      for (const k in v as Record<string, unknown>) n += 16 + k.length + estimateBytes((v as Record<string, unknown>)[k])
      return n
    }
    default: return 32
  }
}

/** A composite key's entry in a KeyMap's Map (keys.ts): the [key, value] array and its slot. */
const COMPOSITE_ENTRY_BYTES = 32 + 2 * 8 + 24

/**
 * Rough heap size of a key held in a KeyMap (keys.ts), the key included. A string or number is
 * the key alone; a composite key (an array or object) also keeps a canonical string, about the
 * key's own size again, and an entry beside the value: counted as the key alone, [src, dst] pairs
 * made a distinct's table over twice its estimate.
 */
export function keyBytes(k: unknown): number {
  const e = estimateBytes(k)
  return typeof k === 'object' && k !== null ? 2 * e + COMPOSITE_ENTRY_BYTES : e
}

/**
 * What a new key costs in a keyed table (the map side's CombineTable, the reduce side's
 * SpillingAggregator and SpillingGrouper, a hash join's build side), its value aside: keyBytes and
 * the entry around it. Measured, as resident bytes
 * after a full collection over 2 M keys of each kind, less keyBytes and a number value's estimate:
 * a string key 103-129 (it is also an atom and a property of a dictionary object: keys.ts), a
 * number 76-90, a pair [string, number] 186-240. At a flat 64 a table of short words held about
 * 1.8x its estimate, and two map tasks' tables passed the bound at --max-mem 1GiB.
 */
export function tableEntryBytes(k: unknown): number {
  const overhead = typeof k === 'string' ? 128 : typeof k === 'object' && k !== null ? 240 : 96
  return overhead + keyBytes(k)
}

/**
 * Reserves in steps of `stepBytes` as an estimate grows, and says when the holder must spill.
 * Keeps the per-record cost to an addition and a comparison.
 */
export class Reservation {
  private used = 0
  private reserved = 0

  constructor(private readonly budget: MemoryBudget, private readonly stepBytes: number = 1 << 20) {}

  /** Adds to the estimate; false means the budget is out: spill, then call reset(). */
  grow(bytes: number): boolean {
    this.used += bytes
    while (this.used > this.reserved) {
      if (!this.budget.tryReserve(this.stepBytes)) return false
      this.reserved += this.stepBytes
    }
    return true
  }

  /** After a spill: the data is on disk, its memory is given back. */
  reset(): void {
    this.budget.release(this.reserved)
    this.used = 0
    this.reserved = 0
  }

  get bytes(): number { return this.used }
}
