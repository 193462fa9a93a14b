// Collections of the young generation, paced by the bytes a task moves. A task makes garbage at
// the rate it moves bytes (a fetched chunk's decoded frames and records; a spill's frame arrays,
// joined strings and encoded bytes, ~3x what it writes), and JavaScriptCore lets the young
// generation grow to about the size of the live heap before it collects it: a reduce task holding
// a budget's worth of records could make as much garbage again before a collection. A young
// collection skips the old, live data and costs a few ms.
import { edenGC } from 'bun:jsc'

/**
 * One young collection after every this many bytes moved. One reduce task's spill at --max-mem
 * 1GiB grew its resident size from 730 to 1040 MiB without it, 800 with it (no slower); a join's
 * reduce side fetching 3 GiB held ~100 MiB less.
 */
export const YOUNG_COLLECT_BYTES = 8 << 20

/** A counter of bytes moved that collects the young generation at every YOUNG_COLLECT_BYTES. */
export function youngCollector(collect: () => void = edenGC, everyBytes = YOUNG_COLLECT_BYTES): (bytes: number) => void {
  let since = 0
  return bytes => {
    if ((since += bytes) < everyBytes) return
    since = 0
    collect()
  }
}
