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
  // Entries by key value (KeyMap), and in insertion order for encoding them by partition.
  private byKey = new KeyMap<CombineEntry>()
  private all: CombineEntry[] = []

  constructor(private readonly parts: number) {}

  get size(): number { return this.all.length }

  find(k: unknown): CombineEntry | undefined { return this.byKey.get(k) }

  /** Adds a key that find() did not return; the first value seen of an equal key is kept as the key. */
  insert(k: unknown, value: unknown): CombineEntry {
    const e: CombineEntry = { key: k, value, part: partitionOf(k, this.parts) }
    this.byKey.set(k, e)
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
    this.byKey = new KeyMap()
    this.all = []
  }
}
