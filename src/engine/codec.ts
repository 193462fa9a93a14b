// Record batches on the wire and in blocks: one frame = 4-byte little-endian length + the
// msgpackr bytes of an array of records (msgpack with the record extension, see below). Pure: it
// turns values into bytes and back; it does not read files, sockets or streams (callers hand it
// chunks).
//
// Frames concatenate: a block or a shuffle response body is just frames back to back, so a
// writer can append batches as they come and a reader can stop at any frame boundary.

import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr'

const HEADER_BYTES = 4

// One encoder and one decoder, reused: building a Packr per batch would cost more than encoding
// small batches. Decoding has its own instance so that nothing a decode learns can reach an encode.
//
// useRecords: msgpackr's record extension writes each object shape (its list of keys) once per
// frame and then only the values: CSV rows and other records of one shape shrink to about half,
// encode faster and decode three times faster than msgpack maps. With no `structures` option the
// shapes are not shared between pack() calls: each frame carries the definitions it uses, so any
// msgpackr decoder, in any process, decodes any frame alone, in any order. (Plain msgpack readers
// other than msgpackr cannot read the record extension: frames are Mini-Spark's own format.)
// mapsAsObjects: msgpack maps come back as plain objects, as JSON records expect.
// int64AsType 'number': msgpackr itself writes integers past 32 bits as float64, which
// roundtrips exactly, but a foreign writer may send int64; a record never holds a bigint.
// copyBuffers: a binary value must not be a view into a decode buffer that FrameDecoder reuses.
const OPTIONS = { useRecords: true, mapsAsObjects: true, int64AsType: 'number', copyBuffers: true } as const
const packr = new Packr(OPTIONS)
const unpackr = new Unpackr(OPTIONS)

/** encode one batch (array of records) as one frame: 4-byte little-endian length + msgpack bytes of the array */
export function encodeFrame(records: readonly unknown[]): Uint8Array {
  // Packr returns a view into its own large scratch buffer. Copying it into an exact-size array
  // costs one memcpy but means a frame never pins that scratch buffer, and postMessage of the
  // frame copies only the frame, not the whole underlying ArrayBuffer.
  const packed = packr.pack(records, RESERVE_START_SPACE | HEADER_BYTES)
  const frame = new Uint8Array(packed)
  writeU32LE(frame, 0, frame.length - HEADER_BYTES)
  return frame
}

/** concatenate frames is just bytes concatenation; decode every frame in a buffer */
export function decodeFrames(buf: Uint8Array): unknown[][] {
  const decoder = new FrameDecoder()
  const out = decoder.push(buf)
  decoder.finish()
  return out
}

/**
 * incremental decoder for a streamed body (chunks arrive split anywhere): push(chunk) returns the complete batches decoded so far; finish() throws an Error naming the byte count if a partial frame is left
 *
 * Bytes of an unfinished frame wait in a ByteSink. A large frame that arrives in many small
 * chunks is appended chunk by chunk and decoded once, when its last byte is in: linear, not
 * quadratic, in the frame size.
 */
export class FrameDecoder {
  private readonly pending = new ByteSink(0)
  // Bytes the pending frame needs before decoding is worth trying: the header, then the whole frame.
  private needBytes = HEADER_BYTES

  push(chunk: Uint8Array): unknown[][] {
    const out: unknown[][] = []
    for (const [buf, start, end] of this.wholeFrames(chunk)) out.push(decodeBatch(buf, start, end))
    return out
  }

  /**
   * Like push, but decodes each batch only when the caller asks for the next: a merge reads many
   * runs at once, and a chunk of small records decoded whole is some 20 times its bytes in objects
   * (a 128 KiB chunk of [[-n, w], [w, n]] records: ~2.5 MiB of heap; sixteen runs of them held
   * 40 MiB through the merge). The generator must be finished before the next push.
   */
  *batches(chunk: Uint8Array): Generator<unknown[]> {
    for (const [buf, start, end] of this.wholeFrames(chunk)) yield decodeBatch(buf, start, end)
  }

  /**
   * Like push, but hands on each complete frame's payload undecoded: `onFrame(buf, start, end)`,
   * the bytes valid only during the call (they may sit in a buffer the decoder reuses). For a
   * reader that takes records as bytes (a sort of lines) and decodes only what it cannot take.
   */
  pushFrames(chunk: Uint8Array, onFrame: (buf: Uint8Array, start: number, end: number) => void): void {
    for (const [buf, start, end] of this.wholeFrames(chunk)) onFrame(buf, start, end)
  }

  /** Each complete frame's payload as [buf, start, end], valid until the generator resumes; the
   *  bytes of an unfinished frame are kept for the next chunk once the generator is done. */
  private *wholeFrames(chunk: Uint8Array): Generator<[Uint8Array, number, number]> {
    let data: Uint8Array
    if (this.pending.length === 0) {
      data = chunk            // common case: read straight from the chunk, no copy
    } else {
      this.pending.append(chunk)
      if (this.pending.length < this.needBytes) return
      data = this.pending.bytes()
    }
    let pos = 0
    while (data.length - pos >= HEADER_BYTES) {
      const len = readU32LE(data, pos)
      const start = pos + HEADER_BYTES
      if (data.length - start < len) break
      yield [data, start, start + len]
      pos = start + len
    }
    // Copy the tail before reset(): when data is the sink's own buffer, append would read
    // the bytes it is overwriting.
    const rest = data.subarray(pos).slice()
    this.pending.reset()
    this.pending.append(rest)
    this.needBytes = rest.length >= HEADER_BYTES ? HEADER_BYTES + readU32LE(rest, 0) : HEADER_BYTES
  }

  finish(): void {
    if (this.pending.length > 0) throw truncated(this.pending.length)
  }
}

/** an appendable byte buffer that grows by doubling, used to build blocks: append(bytes), get length, bytes(): Uint8Array view of the written part, reset() */
export class ByteSink {
  private buf: Uint8Array
  private used = 0

  constructor(initialBytes = 64 * 1024) {
    this.buf = new Uint8Array(initialBytes)
  }

  append(bytes: Uint8Array): void {
    const needed = this.used + bytes.length
    if (needed > this.buf.length) {
      let size = Math.max(this.buf.length * 2, 1024)
      while (size < needed) size *= 2
      const grown = new Uint8Array(size)
      grown.set(this.buf.subarray(0, this.used))
      this.buf = grown
    }
    this.buf.set(bytes, this.used)
    this.used = needed
  }

  get length(): number {
    return this.used
  }

  /** A view, not a copy: it is valid until the next append() or reset(). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.used)
  }

  /** Empties the sink but keeps its memory, so a block builder can reuse it. */
  reset(): void {
    this.used = 0
  }
}

// ---------------------------------------------------------------------------------------------

/** The batch (array of records) of one frame's payload, bytes [start, end) of buf. */
export function decodeBatch(buf: Uint8Array, start: number, end: number): unknown[] {
  // msgpackr treats end 0 as "to the end of the source", so an empty payload never reaches
  // it; encodeFrame never writes one (an empty array is one byte), so it is corrupt input.
  if (end === start) throw new Error(`empty frame at byte ${start - HEADER_BYTES}: the data is corrupt or not Mini-Spark frames`)
  const value: unknown = unpackr.unpack(buf, { start, end })
  if (!Array.isArray(value)) {
    throw new Error(`frame at byte ${start - HEADER_BYTES} holds a ${typeof value}, not a batch ` +
      `(array of records): the data is corrupt or not Mini-Spark frames`)
  }
  return value
}

function truncated(leftBytes: number): Error {
  return new Error(`truncated frame: ${leftBytes} byte(s) left after the last complete frame; ` +
    `the stream ended early or the data is corrupt`)
}

function readU32LE(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 24)) >>> 0
}

function writeU32LE(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff
  b[at + 1] = (v >>> 8) & 0xff
  b[at + 2] = (v >>> 16) & 0xff
  b[at + 3] = (v >>> 24) & 0xff
}
