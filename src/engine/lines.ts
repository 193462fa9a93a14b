// Line boundaries for byte-range splits: turns the bytes of one split into its text lines.
// Pure: the caller reads the file and feeds chunks; this module never touches I/O.
//
// The rule: a line belongs to the split that holds its FIRST byte. Line starts are offset 0
// and every offset right after a '\n'. So a split [start, end) with start > 0 drops the bytes
// up to and including the first '\n' at offset >= start - 1 (that line belongs to the split
// before), then emits every line starting before `end`, reading past `end` to finish the
// last one. Each line is thus emitted by exactly one split, whatever the split sizes.

const NL = 0x0a
const CR = 0x0d

export class LineCutter {
  /** The file offset the caller must start reading from: max(0, start - 1). */
  readonly readFrom: number
  private readonly end: number
  /** File offset of the next byte push() will receive. */
  private pos: number
  /** True until the '\n' ending the line that straddles `start` has been seen. */
  private skipping: boolean
  private finished: boolean
  /** Bytes of the current, unterminated line, copied: the caller may reuse its chunk buffer. */
  private carry = new Uint8Array(1024)
  private carryLen = 0
  private consumed = 0
  // ignoreBOM keeps U+FEFF as text. Without it the decoder strips a BOM at the start of every
  // decode() call, so a line starting with U+FEFF would lose it or not depending on where
  // the chunk boundaries fell.
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true })

  constructor(split: { start: number; end: number }) {
    const { start, end } = split
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new RangeError(`split [${start}, ${end}) must be integer offsets with 0 <= start <= end`)
    }
    this.readFrom = Math.max(0, start - 1)
    this.end = end
    this.pos = this.readFrom
    // Offset 0 is always a line start; any other start may be mid-line. Reading from
    // start - 1 tells the two apart: a '\n' there means a line begins exactly at start.
    this.skipping = start > 0
    this.finished = start >= end
  }

  /** True once every line of the split has been emitted: the caller stops reading. */
  get done(): boolean {
    return this.finished
  }

  /** Bytes of the split's lines consumed so far, terminators included (for metrics). */
  get bytesRead(): number {
    return this.consumed
  }

  /**
   * Feeds the next chunk of file bytes (consecutive, the first one at `readFrom`). Returns the
   * complete lines in it that belong to the split. Chunks after `done` are ignored.
   * The lines are slices of one decoded string per chunk, and on Bun a kept slice keeps that
   * whole string alive: an operator that holds lines long-term (keys of an in-memory map)
   * should copy them, or one 40-byte key can pin a chunk-sized string.
   */
  push(chunk: Uint8Array): string[] {
    const r = this.cut(chunk)
    if (r === null) return []
    const [from, last] = r
    const lines = this.cutLines(chunk, from, last)
    if (!this.finished) this.appendCarry(chunk.subarray(last + 1))
    return lines
  }

  /**
   * push() without decoding, for operators that work on bytes (builtins/): the split's complete
   * lines in the chunk as at most two regions of lines joined by '\n' (no final '\n'; a line may
   * end with the '\r' of CRLF). The first region is a copy when it joins a line carried over from
   * earlier chunks; the other is a view of `chunk`, valid until the caller reuses it.
   */
  pushBytes(chunk: Uint8Array): Uint8Array[] {
    const r = this.cut(chunk)
    if (r === null) return []
    const [from, last] = r
    this.consumed += this.carryLen + (last + 1 - from)
    const regions: Uint8Array[] = []
    let rest = from
    if (this.carryLen > 0) {
      const firstNl = chunk.indexOf(NL, from)
      this.appendCarry(chunk.subarray(from, firstNl))
      regions.push(this.carry.slice(0, this.carryLen))
      this.carryLen = 0
      rest = firstNl + 1
    }
    // rest > last: the carried line was the chunk's only one.
    if (rest <= last) regions.push(chunk.subarray(rest, last))
    if (!this.finished) this.appendCarry(chunk.subarray(last + 1))
    return regions
  }

  /** finish() without decoding: the last, unterminated line's bytes, or null. */
  finishBytes(): Uint8Array | null {
    if (this.finished) return null
    this.finished = true
    if (this.skipping || this.carryLen === 0) return null
    this.consumed += this.carryLen
    const line = this.carry.slice(0, this.carryLen)
    this.carryLen = 0
    return line
  }

  /** The region [from, last) of complete lines in the chunk (chunk[last] is '\n'), or null when
   *  the chunk completes none (its bytes are then carried). */
  private cut(chunk: Uint8Array): [number, number] | null {
    if (this.finished || chunk.length === 0) return null
    const chunkPos = this.pos
    this.pos += chunk.length
    let from = 0
    if (this.skipping) {
      const nl = chunk.indexOf(NL)
      if (nl < 0) return null
      this.skipping = false
      from = nl + 1
      if (chunkPos + from >= this.end) {
        this.finished = true // the straddling line ran past `end`: no line starts in the split
        return null
      }
    }
    // From here the current line starts before `end`. The split's last line is the one ended
    // by the first '\n' at offset >= end - 1; every '\n' before that starts another of its lines.
    const boundary = this.end - 1 - chunkPos
    let last = -1
    if (boundary < chunk.length) {
      last = chunk.indexOf(NL, Math.max(from, boundary))
      if (last >= 0) this.finished = true
    }
    if (last < 0) last = chunk.lastIndexOf(NL)
    if (last < from) {
      this.appendCarry(chunk.subarray(from))
      return null
    }
    return [from, last]
  }

  /** Call at end of file: returns the last, unterminated line if it belongs to the split. */
  finish(): string[] {
    if (this.finished) return []
    this.finished = true
    // Zero carried bytes means the file ended with '\n' (or is empty): there is no line after it.
    if (this.skipping || this.carryLen === 0) return []
    this.consumed += this.carryLen
    const line = this.decoder.decode(this.carry.subarray(0, this.carryLen))
    this.carryLen = 0
    return [stripCr(line)]
  }

  /**
   * Decodes the lines in carry + chunk[from, last), where chunk[last] is '\n'. Decoding only
   * whole lines is what makes chunking safe for UTF-8: 0x0a never occurs inside a multi-byte
   * sequence, so a character split across chunks is always rejoined in the carry first.
   */
  private cutLines(chunk: Uint8Array, from: number, last: number): string[] {
    this.consumed += this.carryLen + (last + 1 - from)
    if (this.carryLen === 0) return splitLines(this.decoder.decode(chunk.subarray(from, last)))
    // Only the line that started in an earlier chunk is joined byte-wise; the rest of the
    // region is decoded in one call, straight from the caller's chunk.
    const firstNl = chunk.indexOf(NL, from)
    this.appendCarry(chunk.subarray(from, firstNl))
    const first = stripCr(this.decoder.decode(this.carry.subarray(0, this.carryLen)))
    this.carryLen = 0
    if (firstNl === last) return [first]
    const lines = splitLines(this.decoder.decode(chunk.subarray(firstNl + 1, last)))
    lines.unshift(first)
    return lines
  }

  private appendCarry(bytes: Uint8Array): void {
    const need = this.carryLen + bytes.length
    if (need > this.carry.length) {
      // Doubling keeps a line spread over many chunks linear to collect, not quadratic.
      const grown = new Uint8Array(Math.max(need, this.carry.length * 2))
      grown.set(this.carry.subarray(0, this.carryLen))
      this.carry = grown
    }
    this.carry.set(bytes, this.carryLen)
    this.carryLen = need
  }
}

/** Splits decoded text at '\n' and drops the '\r' of CRLF endings. */
function splitLines(text: string): string[] {
  const lines = text.split('\n')
  // One native scan of the region is cheaper than a JS loop over every line, so LF-only
  // text (the common case) skips the per-line check.
  if (text.includes('\r')) {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string // i < length
      if (line.charCodeAt(line.length - 1) === CR) lines[i] = line.slice(0, -1)
    }
  }
  return lines
}

function stripCr(line: string): string {
  return line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line
}
