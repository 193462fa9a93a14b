// Where the strings of a frame's batch lie, read from the msgpack bytes with no JS string made: a
// reduce side that keeps lines as bytes (a sort) copies them from here. A frame (codec.ts) is a
// msgpack array; msgpack writes a string as a header and its UTF-8 bytes, so a batch of lines is
// an array header, then a header and the bytes of each line.
// Pure. It never throws on bad bytes: it stops where the batch stops being strings it can read,
// and the caller decodes the frame with codec.ts, which takes what is left or names what is wrong.

export class StringSpans {
  /** the batch's length (records), or -1 when the payload does not start with an array header */
  total = -1
  /** how many leading records are strings; record i's UTF-8 bytes are [starts[i], starts[i] + lengths[i]) */
  strings = 0
  starts = new Int32Array(8192)
  lengths = new Int32Array(8192)

  /** Reads the frame payload buf[start, end). */
  read(buf: Uint8Array, start: number, end: number): void {
    this.total = -1
    this.strings = 0
    const n = batchLength(buf, start, end)
    if (n < 0) return
    let p = start + headerBytes(buf[start]!)
    this.total = n
    if (n > this.starts.length) { this.starts = new Int32Array(n); this.lengths = new Int32Array(n) }
    const starts = this.starts
    const lengths = this.lengths
    let i = 0
    for (; i < n && p < end; i++) {
      const t = buf[p]!
      let len: number
      if (t >= 0xa0 && t <= 0xbf) { len = t & 0x1f; p += 1 } else if (t === 0xd9 && end - p >= 2) { len = buf[p + 1]!; p += 2 } else if (t === 0xda && end - p >= 3) { len = (buf[p + 1]! << 8) | buf[p + 2]!; p += 3 } else if (t === 0xdb && end - p >= 5) {
        len = ((buf[p + 1]! << 24) | (buf[p + 2]! << 16) | (buf[p + 3]! << 8) | buf[p + 4]!) >>> 0
        p += 5
      } else break
      if (len > end - p) break
      starts[i] = p
      lengths[i] = len
      p += len
    }
    // A whole batch of strings must end where the frame ends; anything else is the decoder's to judge.
    this.strings = i === n && p !== end ? 0 : i
  }
}

/** The length of the batch whose payload is buf[start, end), from its array header; -1 when the
 *  payload does not start with one. */
export function batchLength(buf: Uint8Array, start: number, end: number): number {
  if (end - start < 1) return -1
  const tag = buf[start]!
  if (tag >= 0x90 && tag <= 0x9f) return tag & 0x0f
  if (tag === 0xdc && end - start >= 3) return (buf[start + 1]! << 8) | buf[start + 2]!
  if (tag === 0xdd && end - start >= 5) return ((buf[start + 1]! << 24) | (buf[start + 2]! << 16) | (buf[start + 3]! << 8) | buf[start + 4]!) >>> 0
  return -1
}

/** Bytes of an array header, by its first byte (one batchLength accepted). */
const headerBytes = (tag: number): number => tag === 0xdc ? 3 : tag === 0xdd ? 5 : 1
