// The order of a batch of keys, stable, in the total order of keys.ts (compareKeys). Pure.
//
// Why not `order.sort((a, b) => compareKeys(keys[a], keys[b]) || a - b)`: a comparator is a call
// per comparison, and on millions of keys that costs about ten times a native sort (4.3 s against
// 0.35 s for 1.34 M ten-character keys, one core). Nor the native sort of a box per key (the
// previous way): a spill sorts a full table's keys while the table is still held, and the boxes and
// the runtime's sort buffers were the largest spike left when two tasks spilled at once. Strings go
// through the byte sort of string-sort.ts (a key's bytes and a few integers in typed arrays),
// numbers through a radix sort of their IEEE-754 bits (16 bytes a key). Peak resident size added
// by sorting 2 M keys, one process: ten-character strings 217 -> 125 MiB (same time), numbers
// 260 -> 32 MiB (0.56 -> 0.12 s). Mixed or composite keys take the comparator.
import { compareKeys } from './keys'
import { CHUNK_BYTES, StringArena, radixPass, reverseRuns } from './spill/string-sort'

/** The indices of `keys` in sorted order; equal keys keep their order in `keys`. */
export function sortedOrder(keys: readonly unknown[], descending = false): Uint32Array {
  const kind = homogeneousKind(keys)
  if (kind === 'string') return stringOrder(keys as readonly string[], descending)
  if (kind === 'number') return numberOrder(keys as readonly number[], descending)
  return comparatorOrder(keys, descending)
}

function stringOrder(keys: readonly string[], descending: boolean): Uint32Array {
  let units = 0
  for (let i = 0; i < keys.length; i++) units += keys[i]!.length
  // Sized to the keys: a few keys do not take a whole chunk, millions take no doubled arrays.
  const arena = new StringArena(keys.length, Math.min(CHUNK_BYTES, 3 * units + 1))
  for (let i = 0; i < keys.length; i++) arena.add(keys[i]!, '')
  const order = arena.order(descending)
  arena.release()
  return order
}

const f64 = new Float64Array(1)
const u32 = new Uint32Array(f64.buffer)
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const HI = LITTLE_ENDIAN ? 1 : 0
const LO = LITTLE_ENDIAN ? 0 : 1

/** A stable LSD radix sort, 16 bits a pass, of each number's IEEE-754 bits made unsigned-ordered:
 *  the sign bit flipped for positives, every bit for negatives. -0 is 0; NaN sorts last, as
 *  compareKeys has it. */
function numberOrder(keys: readonly number[], descending: boolean): Uint32Array {
  const n = keys.length
  const hi = new Uint32Array(n)
  const lo = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    const x = keys[i]!
    if (x !== x) { hi[i] = 0xffffffff; lo[i] = 0xffffffff; continue }
    f64[0] = x === 0 ? 0 : x
    const h = u32[HI]!, l = u32[LO]!
    if (h & 0x80000000) { hi[i] = ~h >>> 0; lo[i] = ~l >>> 0 } else { hi[i] = (h | 0x80000000) >>> 0; lo[i] = l }
  }
  let order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  let tmp = new Uint32Array(n)
  const counts = new Int32Array(0x10001)
  for (const [words, shift] of [[lo, 0], [lo, 16], [hi, 0], [hi, 16]] as const) {
    if (radixPass(words, shift, 0xffff, order, tmp, counts)) [order, tmp] = [tmp, order]
  }
  return descending ? reverseRuns(order, (a, b) => hi[a] === hi[b] && lo[a] === lo[b]) : order
}

function homogeneousKind(keys: readonly unknown[]): 'string' | 'number' | null {
  if (keys.length === 0) return null
  const kind = typeof keys[0]
  if (kind !== 'string' && kind !== 'number') return null
  for (let i = 1; i < keys.length; i++) if (typeof keys[i] !== kind) return null
  return kind
}

function comparatorOrder(keys: readonly unknown[], descending: boolean): Uint32Array {
  const sign = descending ? -1 : 1
  const order = Array.from({ length: keys.length }, (_, i) => i)
  order.sort((a, b) => sign * compareKeys(keys[a], keys[b]) || a - b)
  return Uint32Array.from(order)
}
