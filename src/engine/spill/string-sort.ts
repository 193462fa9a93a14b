// Sorting string records by string keys as bytes: the common sort (lines by a slice of
// themselves, by a built-in key or a key function). Held as JS values, a 100-byte line and its
// 10-character key cost about 430 bytes of heap (two strings, their headers, two array slots) and
// every collection walks them; a worker sorting its share of 1 GiB passed its memory bound. Here a
// record is its UTF-8 bytes and its key in an order-preserving byte form, side by side in large
// chunks, with a few integers per record in typed arrays: about 50 bytes beyond the text, and
// nothing for the collector to walk. Pure: no I/O (runs go through a RunStore).
//
// The key's bytes: each UTF-16 code unit as the UTF-8 form of its value (1 to 3 bytes; a surrogate
// as itself, as CESU-8 does). These forms keep the order of the values and none is a prefix of
// another, so comparing the bytes as unsigned numbers, a shorter key that is a prefix first, is
// comparing the strings by code unit: what `<` on strings and keys.ts's compareKeys do.
//
// The order: a stable LSD radix sort on the key's first three bytes (packed per record when it
// is added), then an MSD radix sort on the following bytes within each group of equal prefixes,
// insertion sort for small groups. No comparator call per comparison, no object per record.
import { ByteSink } from '../codec'
import { WRITE_CHUNK_BYTES, type RunFile, type RunStore } from './runs'

/** Bytes of an arena chunk; a record longer than this gets a chunk of its own. */
export const CHUNK_BYTES = 4 << 20
/** Bytes held per record beyond its key and text: its place (16) and prefix (4), twice that for
 *  the arrays' doubling, and the sort's three orders (12). */
export const RECORD_OVERHEAD = 52
const ASCII = 0x80000000 | 0
/** Groups this small are put in order by insertion. */
const SMALL = 16

/** A sort's records held as bytes, in the order they were added. */
export class StringArena {
  private chunks: Buffer[] = []
  private chunk: Buffer | null = null
  private at = 0
  /** per record: chunk, key start, key length, text length (| ASCII when every character is) */
  private meta: Int32Array
  /** per record: the key's first three bytes as base-257 digits (byte + 1; 0 past the key's end) */
  private prefix: Uint32Array
  count = 0

  /** `capacity`: the records expected, when known (the arrays grow by doubling past it);
   *  `chunkBytes`: the size of a chunk of bytes. */
  constructor(capacity = 1024, private readonly chunkBytes = CHUNK_BYTES) {
    this.meta = new Int32Array(4 * Math.max(1, capacity))
    this.prefix = new Uint32Array(Math.max(1, capacity))
  }

  /** Lets go of every record's bytes (after they were written): the arena holds nothing after. */
  release(): void {
    this.chunks.length = 0
    this.chunk = null
    this.at = 0
    this.meta = new Int32Array(0)
    this.prefix = new Uint32Array(0)
    this.count = 0
  }

  /** Adds a record; returns the bytes it holds now, or -1 when its text is not well-formed UTF-16
   *  (a lone surrogate UTF-8 cannot carry): such a sort is held as JS values instead. */
  add(key: string, record: string): number {
    const c = this.room(3 * (key.length + record.length))
    const start = this.at
    const kl = writeKeyBytes(key, c, start)
    const rl = (c as Slicing).utf8Write(record, start + kl)
    const ascii = rl === record.length
    if (!ascii && !record.isWellFormed()) return -1
    return this.commit(start, kl, rl, ascii)
  }

  /**
   * Adds a record given as bytes: its text src[textStart, textStart + textLen), its key the bytes
   * src[keyStart, keyStart + keyLen), a range of the text. Returns the bytes it holds now, or -1,
   * with nothing added, when the text is not all ASCII: only there is each byte one character, so
   * that a slice of the characters is the same slice of the bytes, and the caller takes such a
   * record as a string instead.
   */
  addAscii(src: Uint8Array, textStart: number, textLen: number, keyStart: number, keyLen: number): number {
    const c = this.room(keyLen + textLen)
    const start = this.at
    const t = start + keyLen
    // One pass copies the text and finds a byte past ASCII; the key is copied only for an ASCII text.
    let high = 0
    for (let i = 0; i < textLen; i++) { const x = src[textStart + i]!; c[t + i] = x; high |= x }
    if (high >= 0x80) return -1
    for (let i = 0; i < keyLen; i++) c[start + i] = src[keyStart + i]!
    return this.commit(start, keyLen, textLen, true)
  }

  /** The current chunk, with `need` bytes free from `at` (a new chunk when it has not). */
  private room(need: number): Buffer {
    if (this.chunk === null || this.at + need > this.chunk.length) {
      this.chunk = Buffer.allocUnsafe(Math.max(this.chunkBytes, need))
      this.chunks.push(this.chunk)
      this.at = 0
    }
    return this.chunk
  }

  /**
   * Adds a record given as ASCII bytes, src[textStart, textStart + textLen) (the caller checked
   * them), with a key of its own (from a key function). Returns the bytes it holds now.
   */
  addAsciiKeyed(key: string, src: Uint8Array, textStart: number, textLen: number): number {
    const c = this.room(3 * key.length + textLen)
    const start = this.at
    const kl = writeKeyBytes(key, c, start)
    const t = start + kl
    for (let i = 0; i < textLen; i++) c[t + i] = src[textStart + i]!
    return this.commit(start, kl, textLen, true)
  }

  /** Records the record just written at `start` of the current chunk. */
  private commit(start: number, kl: number, rl: number, ascii: boolean): number {
    const c = this.chunk!
    this.at = start + kl + rl
    const n = this.count
    if (4 * n + 4 > this.meta.length) this.grow()
    const m = 4 * n
    this.meta[m] = this.chunks.length - 1
    this.meta[m + 1] = start
    this.meta[m + 2] = kl
    this.meta[m + 3] = ascii ? rl | ASCII : rl
    this.prefix[n] = prefixOf(c, start, kl)
    this.count = n + 1
    return kl + rl + RECORD_OVERHEAD
  }

  private grow(): void {
    const meta = new Int32Array(this.meta.length * 2)
    meta.set(this.meta)
    this.meta = meta
    const prefix = new Uint32Array(this.prefix.length * 2)
    prefix.set(this.prefix)
    this.prefix = prefix
  }

  /** The records' indices in key order; equal keys in the order added, or in reverse key order
   *  with equal keys still in the order added. */
  order(descending: boolean): Uint32Array {
    const n = this.count
    const order = prefixOrder(this.prefix, n)
    const tmp = new Uint32Array(n)
    const counts = new Int32Array(258)
    const prefix = this.prefix
    for (let a = 0; a < n;) {
      const p = prefix[order[a]!]!
      let b = a + 1
      while (b < n && prefix[order[b]!] === p) b++
      // A prefix whose last digit is 0 holds the whole key: the group's keys are equal.
      if (b - a > 1 && p % 257 !== 0) {
        if (b - a <= SMALL) this.insertionSort(order, a, b, 3)
        else this.sortFrom(order, tmp, counts, a, b, 3)
      }
      a = b
    }
    return descending ? this.reversed(order) : order
  }

  /** MSD radix sort of order[lo, hi) by key bytes from `depth` on; stable. */
  private sortFrom(order: Uint32Array, tmp: Uint32Array, counts: Int32Array, lo: number, hi: number, depth: number): void {
    const stack: number[] = [lo, hi, depth]
    const meta = this.meta
    const chunks = this.chunks
    while (stack.length > 0) {
      const d = stack.pop()!
      const h = stack.pop()!
      const l = stack.pop()!
      if (h - l <= SMALL) { this.insertionSort(order, l, h, d); continue }
      counts.fill(0)
      for (let i = l; i < h; i++) counts[digitAt(chunks, meta, order[i]!, d) + 1]!++
      // All in one bucket: nothing to move, look one byte further (unless the keys ended).
      let only = -1
      for (let b = 1; b <= 257; b++) if (counts[b] === h - l) { only = b - 1; break }
      if (only === 0) continue
      if (only > 0) { stack.push(l, h, d + 1); continue }
      for (let b = 1; b <= 257; b++) counts[b]! += counts[b - 1]!
      for (let i = l; i < h; i++) { const r = order[i]!; tmp[l + counts[digitAt(chunks, meta, r, d)]!++] = r }
      for (let i = l; i < h; i++) order[i] = tmp[i]!
      // counts[b] is now the end of bucket b; bucket 0 (the key ended) holds equal keys.
      for (let b = 1; b <= 256; b++) {
        const s = l + counts[b - 1]!
        const e = l + counts[b]!
        if (e - s > 1) stack.push(s, e, d + 1)
      }
    }
  }

  private insertionSort(order: Uint32Array, lo: number, hi: number, depth: number): void {
    for (let i = lo + 1; i < hi; i++) {
      const r = order[i]!
      let j = i
      while (j > lo && this.compare(order[j - 1]!, r, depth) > 0) { order[j] = order[j - 1]!; j-- }
      order[j] = r
    }
  }

  /** Compares the keys of records a and b from byte `from` on. */
  private compare(a: number, b: number, from = 0): number {
    const m = this.meta
    const ca = this.chunks[m[4 * a]!]!, cb = this.chunks[m[4 * b]!]!
    return compareBytes(ca, m[4 * a + 1]! + from, m[4 * a + 2]! - from, cb, m[4 * b + 1]! + from, m[4 * b + 2]! - from)
  }

  private reversed(order: Uint32Array): Uint32Array {
    return reverseRuns(order, (a, b) => this.compare(a, b) === 0)
  }

  /** A cursor over the records in `order`. */
  cursor(order: Uint32Array): RecordCursor {
    return new ArenaCursor(this.chunks, this.meta, order)
  }

  /** The records as [key, text] in the order added: for a sort that turns to JS values. */
  *entries(): Generator<[string, string]> {
    const m = this.meta
    for (let i = 0; i < this.count; i++) {
      const c = this.chunks[m[4 * i]!]!
      const s = m[4 * i + 1]!, kl = m[4 * i + 2]!, r = m[4 * i + 3]!
      yield [readKeyBytes(c, s, s + kl), textOf(c, s + kl, r)]
    }
  }
}

/** The order reversed, each run of equal keys still in input order (stable). */
export function reverseRuns(order: Uint32Array, same: (a: number, b: number) => boolean): Uint32Array {
  const n = order.length
  const out = new Uint32Array(n)
  let at = 0
  for (let end = n; end > 0;) {
    let start = end - 1
    while (start > 0 && same(order[start - 1]!, order[end - 1]!)) start--
    for (let j = start; j < end; j++) out[at++] = order[j]!
    end = start
  }
  return out
}

const digitAt = (chunks: Buffer[], meta: Int32Array, r: number, d: number): number => {
  const kl = meta[4 * r + 2]!
  return d < kl ? chunks[meta[4 * r]!]![meta[4 * r + 1]! + d]! + 1 : 0
}

function prefixOf(c: Uint8Array, s: number, kl: number): number {
  const d0 = kl > 0 ? c[s]! + 1 : 0
  const d1 = kl > 1 ? c[s + 1]! + 1 : 0
  const d2 = kl > 2 ? c[s + 2]! + 1 : 0
  return (d0 * 257 + d1) * 257 + d2
}

/** The indices 0..n-1 ordered by prefix, stable: two LSD passes of 14 and 13 bits. */
function prefixOrder(prefix: Uint32Array, n: number): Uint32Array {
  let order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  let tmp = new Uint32Array(n)
  const counts = new Int32Array((1 << 14) + 1)
  for (const [shift, mask] of [[0, 0x3fff], [14, 0x1fff]] as const) {
    if (radixPass(prefix, shift, mask, order, tmp, counts)) [order, tmp] = [tmp, order]
  }
  return order
}

/**
 * One stable pass of an LSD radix sort: `from`, an order of the indices 0..from.length - 1 into
 * `words`, reordered into `to` by each index's digit (words[r] >>> shift) & mask. Returns false,
 * having moved nothing, when every index has the same digit. `counts` is scratch of at least
 * mask + 2 entries.
 */
export function radixPass(words: Uint32Array, shift: number, mask: number, from: Uint32Array, to: Uint32Array, counts: Int32Array): boolean {
  const n = from.length
  counts.fill(0, 0, mask + 2)
  // The digits' counts do not depend on the order: read in place.
  for (let i = 0; i < n; i++) counts[((words[i]! >>> shift) & mask) + 1]!++
  if (counts.subarray(1, mask + 2).includes(n)) return false
  for (let d = 1; d <= mask; d++) counts[d]! += counts[d - 1]!
  for (let i = 0; i < n; i++) { const r = from[i]!; to[counts[(words[r]! >>> shift) & mask]!++] = r }
  return true
}

/** Writes the key's order-preserving bytes at `at` (room for 3 bytes a code unit); returns their count. */
export function writeKeyBytes(key: string, out: Uint8Array, at: number): number {
  const start = at
  for (let i = 0; i < key.length; i++) {
    const u = key.charCodeAt(i)
    if (u < 0x80) out[at++] = u
    else if (u < 0x800) { out[at++] = 0xc0 | (u >> 6); out[at++] = 0x80 | (u & 0x3f) }
    else { out[at++] = 0xe0 | (u >> 12); out[at++] = 0x80 | ((u >> 6) & 0x3f); out[at++] = 0x80 | (u & 0x3f) }
  }
  return at - start
}

/** The key back from its bytes. */
export function readKeyBytes(b: Uint8Array, start: number, end: number): string {
  const units: number[] = []
  for (let i = start; i < end;) {
    const x = b[i]!
    if (x < 0x80) { units.push(x); i++ } else if (x < 0xe0) { units.push(((x & 0x1f) << 6) | (b[i + 1]! & 0x3f)); i += 2 } else {
      units.push(((x & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f))
      i += 3
    }
  }
  let s = ''
  for (let i = 0; i < units.length; i += 4096) s += String.fromCharCode(...units.slice(i, i + 4096))
  return s
}

export function compareBytes(a: Uint8Array, as: number, al: number, b: Uint8Array, bs: number, bl: number): number {
  const n = al < bl ? al : bl
  for (let i = 0; i < n; i++) {
    const x = a[as + i]!, y = b[bs + i]!
    if (x !== y) return x < y ? -1 : 1
  }
  return al === bl ? 0 : al < bl ? -1 : 1
}

/** A record's text from its bytes; `len` carries the ASCII flag. */
export const textOf = (b: Buffer, start: number, len: number): string =>
  len < 0 ? (b as Slicing).latin1Slice(start, start + (len & 0x7fffffff)) : (b as Slicing).utf8Slice(start, start + len)

/** True when buf[start, start + len) is all ASCII. */
export function isAscii(buf: Uint8Array, start: number, len: number): boolean {
  let high = 0
  for (let i = start, end = start + len; i < end; i++) high |= buf[i]!
  return high < 0x80
}

/** The string of ASCII bytes b[start, start + len). */
export const asciiText = (b: Buffer, start: number, len: number): string => (b as Slicing).latin1Slice(start, start + len)

/** Node's and Bun's Buffer coders without toString's and write's argument checks, several times
 *  faster per call on short strings (not in the typings). */
type Slicing = Buffer & { latin1Slice(start: number, end: number): string; utf8Slice(start: number, end: number): string; utf8Write(s: string, at: number): number }

// ---- cursors, runs and the merge ---------------------------------------------------------------

/** One record at a time: after next() returns true, the fields describe the current record. */
export interface RecordCursor {
  next(): boolean
  buf: Buffer
  keyStart: number
  keyLen: number
  /** text length | ASCII flag (see textOf); the text follows the key */
  textLen: number
}

class ArenaCursor implements RecordCursor {
  buf!: Buffer
  keyStart = 0
  keyLen = 0
  textLen = 0
  private i = 0
  constructor(private readonly chunks: Buffer[], private readonly meta: Int32Array, private readonly order: Uint32Array) {}
  next(): boolean {
    if (this.i >= this.order.length) return false
    const r = this.order[this.i++]!
    const m = this.meta
    this.buf = this.chunks[m[4 * r]!]!
    this.keyStart = m[4 * r + 1]!
    this.keyLen = m[4 * r + 2]!
    this.textLen = m[4 * r + 3]!
    return true
  }
}

// A byte run: records back to back, each [key length u32][text length | ASCII u32][key][text],
// little-endian. Runs never leave the worker that wrote them.
const HEADER = 8

/** Writes the cursor's records as one run, in chunks of about WRITE_CHUNK_BYTES. */
export function writeByteRun(store: RunStore, cursor: RecordCursor): RunFile {
  return store.write((function* () {
    const sink = new ByteSink(WRITE_CHUNK_BYTES)
    const head = new Uint8Array(HEADER)
    const view = new DataView(head.buffer)
    while (cursor.next()) {
      view.setUint32(0, cursor.keyLen, true)
      view.setInt32(4, cursor.textLen, true)
      const len = cursor.keyLen + (cursor.textLen & 0x7fffffff)
      if (sink.length > 0 && sink.length + HEADER + len > WRITE_CHUNK_BYTES) { yield sink.bytes(); sink.reset() }
      sink.append(head)
      sink.append(cursor.buf.subarray(cursor.keyStart, cursor.keyStart + len))
    }
    if (sink.length > 0) yield sink.bytes()
  })())
}

/** Reads a byte run back a record at a time, holding one read chunk (more for a longer record). */
export class RunCursor implements RecordCursor {
  buf: Buffer = Buffer.alloc(0)
  keyStart = 0
  keyLen = 0
  textLen = 0
  private pos = 0
  private readonly chunks: Iterator<Uint8Array>

  constructor(store: RunStore, run: RunFile) {
    this.chunks = store.read(run)[Symbol.iterator]()
  }

  next(): boolean {
    if (!this.have(HEADER)) return false
    const b = this.buf
    const kl = b.readUInt32LE(this.pos)
    const tl = b.readInt32LE(this.pos + 4)
    if (!this.have(HEADER + kl + (tl & 0x7fffffff))) throw new Error('a spill run ends inside a record')
    this.keyStart = this.pos + HEADER
    this.keyLen = kl
    this.textLen = tl
    this.pos += HEADER + kl + (tl & 0x7fffffff)
    return true
  }

  /** Makes `n` bytes from pos readable in buf; false at the run's end with none left. */
  private have(n: number): boolean {
    while (this.buf.length - this.pos < n) {
      const c = this.chunks.next()
      if (c.done) {
        if (this.buf.length - this.pos === 0) return false
        throw new Error('a spill run ends inside a record')
      }
      const rest = this.buf.subarray(this.pos)
      const joined = Buffer.allocUnsafe(rest.length + c.value.length)
      joined.set(rest, 0)
      joined.set(c.value, rest.length)
      this.buf = joined
      this.pos = 0
    }
    return true
  }
}

/** k-way merge of sorted cursors by key bytes, itself a cursor; ties go to the earlier cursor, so
 *  a merge of stable runs is stable. A record stays readable until the next call. */
export class MergedCursor implements RecordCursor {
  buf: Buffer = Buffer.alloc(0)
  keyStart = 0
  keyLen = 0
  textLen = 0
  private heap: number[] | null = null
  private readonly sign: number

  constructor(private readonly cursors: RecordCursor[], descending: boolean) {
    this.sign = descending ? -1 : 1
  }

  private less(i: number, j: number): boolean {
    const a = this.cursors[i]!, b = this.cursors[j]!
    const c = this.sign * compareBytes(a.buf, a.keyStart, a.keyLen, b.buf, b.keyStart, b.keyLen)
    return c < 0 || (c === 0 && i < j)
  }

  private down(at: number): void {
    const heap = this.heap!
    for (;;) {
      const l = 2 * at + 1
      let m = at
      if (l < heap.length && this.less(heap[l]!, heap[m]!)) m = l
      if (l + 1 < heap.length && this.less(heap[l + 1]!, heap[m]!)) m = l + 1
      if (m === at) return
      const t = heap[at]!; heap[at] = heap[m]!; heap[m] = t
      at = m
    }
  }

  next(): boolean {
    let heap = this.heap
    if (heap === null) {
      heap = this.heap = []
      for (let i = 0; i < this.cursors.length; i++) if (this.cursors[i]!.next()) heap.push(i)
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) this.down(i)
    } else if (heap.length > 0) {
      // The record handed out last is done with: move its cursor on.
      if (!this.cursors[heap[0]!]!.next()) {
        const last = heap.pop()!
        if (heap.length > 0) heap[0] = last
      }
      if (heap.length > 0) this.down(0)
    }
    if (heap.length === 0) return false
    const c = this.cursors[heap[0]!]!
    this.buf = c.buf
    this.keyStart = c.keyStart
    this.keyLen = c.keyLen
    this.textLen = c.textLen
    return true
  }
}
