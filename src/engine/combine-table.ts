// The map side's table for reduce_by_key and distinct: every reduce partition's keys in one table,
// keyed by value (the equality of keys.ts). Pure.
//
// Why one table and not one KeyMap per partition: with a map per partition, every record pays
// for hashing its key twice (once in JS for partitionOf, once natively for the Map) and for a
// get followed by a set. Here a record costs one lookup; the partition is hashed once per
// distinct key, when it is inserted, and kept in the entry, whose value is updated in place.
import { KeyMap, partitionOf } from './keys'

export type CombineEntry = { readonly key: unknown; value: unknown; readonly part: number }

export class CombineTable {
  // Entries by key value (KeyMap), and each reduce partition's in insertion order: a spill encodes
  // them a partition at a time, straight from these lists, and lets each go once it is written
  // (a copy of the whole table, by partition, was a third of the table again at the moment it spilled).
  private readonly byKey = new KeyMap<CombineEntry>()
  private lists: CombineEntry[][]
  private count = 0

  constructor(private readonly parts: number) {
    this.lists = emptyLists(parts)
  }

  get size(): number { return this.count }

  find(k: unknown): CombineEntry | undefined { return this.byKey.get(k) }

  /** Adds a key that find() did not return; the first value seen of an equal key is kept as the key. */
  insert(k: unknown, value: unknown): CombineEntry {
    const e: CombineEntry = { key: k, value, part: partitionOf(k, this.parts) }
    this.byKey.set(k, e)
    this.lists[e.part]!.push(e)
    this.count++
    return e
  }

  /** The entries of each reduce partition, in insertion order; the table is empty after. */
  drain(): CombineEntry[][] {
    const out = this.lists
    this.byKey.clear() // emptied, not only dropped: see SpillingAggregator.spillNow
    this.lists = emptyLists(this.parts)
    this.count = 0
    return out
  }
}

function emptyLists(parts: number): CombineEntry[][] {
  return Array.from({ length: parts }, () => [])
}
