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

/** Counter layout: one Int32 of KiB reserved by all tasks of the worker. */
export const BUDGET_SLOTS = 1

export function newBudgetBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * BUDGET_SLOTS)
}

/** KiB reserved now by all tasks sharing the buffer (the worker's main thread reads this). */
export function reservedBytes(sab: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(sab), 0) * 1024
}

/**
 * A task's view of the shared counter. A reservation fails once the worker's tasks together would
 * pass `spillAtBytes`, unless this task holds less than `floorBytes`: every task keeps a small
 * working set, so that one task's spilling cannot starve another into spilling record by record.
 */
export class SharedBudget implements MemoryBudget {
  private readonly counter: Int32Array
  private readonly limitKiB: number
  private heldKiB = 0

  constructor(sab: SharedArrayBuffer, spillAtBytes: number, private readonly floorBytes: number) {
    this.counter = new Int32Array(sab)
    this.limitKiB = Math.floor(spillAtBytes / 1024)
  }

  get holding(): number { return this.heldKiB * 1024 }

  tryReserve(bytes: number): boolean {
    const kib = Math.ceil(bytes / 1024)
    for (;;) {
      const now = Atomics.load(this.counter, 0)
      if (now + kib > this.limitKiB && this.holding >= this.floorBytes) return false
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
