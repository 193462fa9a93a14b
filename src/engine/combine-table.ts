// The map side's table for reduce_by_key and distinct: every reduce partition's keys in one table,
// keyed by value (the equality of keys.ts). Pure.
//
// Why one table and not one KeyMap per partition: with a map per partition, every record pays
// for hashing its key twice (once in JS for partitionOf, once natively for the Map) and for a
// get followed by a set. Here a record costs one lookup; the partition is hashed once per
// distinct key, when it is inserted, and kept in the entry, whose value is updated in place.
import { canonical, partitionOf } from './keys'

export type CombineEntry = { readonly key: unknown; value: unknown; readonly part: number }

export class CombineTable {
  // Strings in a dictionary object (faster than a Map for string keys, see KeyMap in keys.ts),
  // other primitives by value in a native Map (SameValueZero: -0 is 0, NaN is NaN), composite keys
  // under their canonical string, so the string "[1]" and the array [1] stay apart.
  private strings: Record<string, CombineEntry> = Object.create(null) as Record<string, CombineEntry>
  private all: CombineEntry[] = []
  private prims = new Map<unknown, CombineEntry>()
  private composites = new Map<string, CombineEntry>()

  constructor(private readonly parts: number) {}

  get size(): number { return this.all.length }

  find(k: unknown): CombineEntry | undefined {
    if (typeof k === 'string') return this.strings[k]
    return typeof k !== 'object' || k === null ? this.prims.get(k) : this.composites.get(canonical(k))
  }

  /** Adds a key that find() did not return; the first value seen of an equal key is kept as the key. */
  insert(k: unknown, value: unknown): CombineEntry {
    const e: CombineEntry = { key: k, value, part: partitionOf(k, this.parts) }
    if (typeof k === 'string') this.strings[k] = e
    else if (typeof k !== 'object' || k === null) this.prims.set(k, e)
    else this.composites.set(canonical(k), e)
    this.all.push(e)
    return e
  }

  /** The entries of each reduce partition, in insertion order. */
  byPartition(): CombineEntry[][] {
    const out: CombineEntry[][] = Array.from({ length: this.parts }, () => [])
    for (const e of this.all) out[e.part]!.push(e)
    return out
  }

  clear(): void {
    this.strings = Object.create(null) as Record<string, CombineEntry>
    this.all = []
    this.prims = new Map()
    this.composites = new Map()
  }
}
