import { test, expect } from 'bun:test'
import { prng as rng } from '../support/prng'
import { LineCutter } from '../../src/engine/lines'
import { planSplits } from '../../src/engine/splits'

// Every split of a file, read through LineCutter, must give back exactly the file's lines:
// none lost, none twice. The reference below is plain String.split, with no engine code.

type Range = { start: number; end: number }

// Small seeded PRNG (mulberry32) so a failing case reproduces from its seed.

function reference(text: string): string[] {
  if (text === '') return [] // an empty file has no lines, not one empty line
  const lines = text.split('\n')
  if (text.endsWith('\n')) lines.pop()
  return lines.map(l => (l.endsWith('\r') ? l.slice(0, -1) : l))
}

/** Ranges of exactly `n` bytes (the last may be shorter): unlike planSplits, no merging. */
function exactSplits(size: number, n: number): Range[] {
  const out: Range[] = []
  for (let start = 0; start < size; start += n) out.push({ start, end: Math.min(start + n, size) })
  return out
}

/** Ranges cut at random offsets, so boundaries land anywhere, also next to each other. */
function randomSplits(size: number, next: () => number): Range[] {
  const out: Range[] = []
  for (let start = 0; start < size; ) {
    const end = Math.min(size, start + 1 + Math.floor(next() * next() * 40))
    out.push({ start, end })
    start = end
  }
  return out
}

/**
 * Reads one split the way a task does: chunks from readFrom until done, else finish() at EOF.
 * Chunks go through one reused buffer that is overwritten with '\n' after each push, so a
 * cutter that kept a view of the caller's bytes instead of copying its carry would fail.
 */
function readSplit(buf: Uint8Array, range: Range, chunkBytes: number, scratch: Uint8Array) {
  const cutter = new LineCutter(range)
  const at = `[${range.start}, ${range.end}) chunk=${chunkBytes}`
  // Plain checks, not expect(): this runs for hundreds of thousands of splits.
  if (cutter.readFrom !== Math.max(0, range.start - 1)) throw new Error(`${at}: readFrom ${cutter.readFrom}`)
  const lines: string[] = []
  let offset = cutter.readFrom
  let lastChunkAt = -1
  while (!cutter.done && offset < buf.length) {
    const n = Math.min(chunkBytes, buf.length - offset)
    scratch.set(buf.subarray(offset, offset + n))
    lastChunkAt = offset
    for (const line of cutter.push(scratch.subarray(0, n))) lines.push(line)
    scratch.fill(0x0a, 0, n)
    offset += n
  }
  if (!cutter.done) for (const line of cutter.finish()) lines.push(line)
  if (!cutter.done || cutter.finish().length > 0) throw new Error(`${at}: not done after finish()`)
  // The split ends with the line ended by the first '\n' at offset >= end - 1: the cutter must
  // be done in the chunk holding that '\n', not ask for more.
  const nl = buf.indexOf(0x0a, Math.max(0, range.end - 1))
  const stopAt = nl < 0 ? buf.length : nl + 1
  if (lastChunkAt >= stopAt) throw new Error(`${at}: read a chunk at ${lastChunkAt}, past its last line (${stopAt})`)
  return { lines, bytesRead: cutter.bytesRead }
}

function readAll(buf: Uint8Array, ranges: Range[], chunkBytes: number): string[] {
  const scratch = new Uint8Array(chunkBytes)
  const lines: string[] = []
  let bytes = 0
  for (const r of ranges) {
    const got = readSplit(buf, r, chunkBytes, scratch)
    for (const line of got.lines) lines.push(line)
    bytes += got.bytesRead
  }
  // Each byte belongs to exactly one line, so the splits' byte counts add up to the file.
  expect(bytes).toBe(buf.length)
  return lines
}

/** Like toEqual, but on failure names the first differing line instead of dumping both arrays. */
function expectLines(actual: string[], expected: string[], label: string): void {
  let i = 0
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++
  if (i === actual.length && i === expected.length) return
  throw new Error(`${label}: first difference at line ${i}: got ${JSON.stringify(actual[i])}, `
    + `want ${JSON.stringify(expected[i])} (${actual.length} lines, want ${expected.length})`)
}

const SPLIT_BYTES = [1, 2, 3, 7, 64, 1000]
const CHUNK_BYTES = [1, 5, 4096]

function checkFile(name: string, text: string): void {
  const buf = new TextEncoder().encode(text)
  const expected = reference(text)
  for (const splitBytes of SPLIT_BYTES) {
    for (const chunkBytes of CHUNK_BYTES) {
      const label = `${name} split=${splitBytes} chunk=${chunkBytes}`
      expectLines(readAll(buf, exactSplits(buf.length, splitBytes), chunkBytes), expected, `${label} exact`)
      const planned = planSplits([{ path: name, size: buf.length }], splitBytes)
      expectLines(readAll(buf, planned, chunkBytes), expected, `${label} planned`)
    }
  }
}

const FIXED: Record<string, string> = {
  'empty': '',
  'one newline': '\n',
  'only newlines': '\n\n\n\n\n\n\n',
  'no trailing newline': 'abc',
  'one line': 'abc\n',
  'multibyte': 'héllo ✓ 日本',
  'multibyte lines': 'héllo ✓ 日本\n😀😀\r\n\r\n日本語のテキスト\nfin',
  'crlf only': '\r\n\r\n\r\n',
  'lone cr at eof': 'a\r',
  'just cr': '\r',
  'cr inside a line is kept': 'a\rb\r\nc\r\r\n',
  // Lines longer than the largest split size (1000). Kept near it: every split inside a line
  // scans to the line's end, so the test's cost grows with the square of the line length.
  'long lines': `${'x'.repeat(1100)}\nshort\n${'y'.repeat(1050)}`,
  'long multibyte line': '日本'.repeat(170),
  'bom': '\uFEFFfirst\n\uFEFF\n\uFEFFthird\r\n',
}

for (const [name, text] of Object.entries(FIXED)) {
  test(`every split size and chunk size reads back the lines: ${name}`, () => checkFile(name, text))
}

const PIECES = ['a', 'b', 'c', 'x', ' ', '\t', ',', 'é', '✓', '日', '本', '😀', '\r', '\uFEFF']

/** A line of at least `minBytes` UTF-8 bytes (lengths count bytes: pieces take 1 to 4). */
function randomLine(next: () => number, minBytes: number): string {
  let line = ''
  for (let bytes = 0; bytes < minBytes; ) {
    const piece = PIECES[Math.floor(next() * PIECES.length)] ?? 'a'
    line += piece
    bytes += Buffer.byteLength(piece)
  }
  return line
}

function randomText(next: () => number): string {
  const lineCount = Math.floor(next() * 120)
  const ending = next() < 0.4 ? '\n' : next() < 0.5 ? '\r\n' : 'mixed'
  // At most one line longer than the largest split size per file, for the cost reason above.
  const longLine = next() < 0.25 ? Math.floor(next() * lineCount) : -1
  let text = ''
  for (let i = 0; i < lineCount; i++) {
    const roll = next()
    const minBytes = i === longLine ? 1001 + Math.floor(next() * 50)
      : roll < 0.15 ? 0 : roll < 0.97 ? Math.floor(next() * 14) : 65 + Math.floor(next() * 100)
    text += randomLine(next, minBytes)
    const eol = ending === 'mixed' ? (next() < 0.5 ? '\n' : '\r\n') : ending
    if (i < lineCount - 1 || next() < 0.7) text += eol
  }
  return text
}

// One test per seed: a failure names the seed that reproduces it.
for (let seed = 1; seed <= 30; seed++) {
  test(`random file, seed ${seed}: every split size and chunk size reads back the lines`, () => {
    checkFile(`seed ${seed}`, randomText(rng(seed)))
  })
}

test('random files cut at random offsets read back the lines', () => {
  for (let seed = 100; seed < 160; seed++) {
    const next = rng(seed)
    const text = randomText(next)
    const buf = new TextEncoder().encode(text)
    for (const chunkBytes of [1, 2, 3, 5, 16, 4096]) {
      expectLines(readAll(buf, randomSplits(buf.length, next), chunkBytes), reference(text),
        `seed ${seed} chunk=${chunkBytes}`)
    }
  }
})

test('invalid UTF-8 decodes the same whatever the chunking', () => {
  // Bad bytes become U+FFFD; since only whole lines are decoded, where they become it
  // must not depend on chunk or split boundaries. Reference: each line decoded on its own.
  const bad = [0xff, 0xc3, 0xe6, 0x97, 0x80, 0xf0, 0x9f]
  const next = rng(99)
  const bytes: number[] = []
  for (let i = 0; i < 3000; i++) {
    const r = next()
    bytes.push(r < 0.1 ? 0x0a : r < 0.3 ? (bad[Math.floor(next() * bad.length)] ?? 0xff) : 0x61)
  }
  const buf = new Uint8Array(bytes)
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true })
  const expected: string[] = []
  for (let start = 0; start < buf.length; ) {
    const nl = buf.indexOf(0x0a, start)
    const stop = nl < 0 ? buf.length : nl
    expected.push(decoder.decode(buf.subarray(start, stop)))
    start = stop + 1
  }
  for (const splitBytes of SPLIT_BYTES) {
    for (const chunkBytes of CHUNK_BYTES) {
      expectLines(readAll(buf, exactSplits(buf.length, splitBytes), chunkBytes), expected,
        `invalid utf-8 split=${splitBytes} chunk=${chunkBytes}`)
    }
  }
})

test('a split emits lines starting before its end, reading past it to finish the last one', () => {
  const buf = Buffer.from('ab\ncd\nef\n')
  // [4, 7): starts mid "cd", so it skips to offset 6 and owns only "ef" (starts at 6 < 7).
  const cutter = new LineCutter({ start: 4, end: 7 })
  expect(cutter.readFrom).toBe(3)
  expect(cutter.push(buf.subarray(3, 7))).toEqual([])
  expect(cutter.done).toBe(false)
  expect(cutter.push(buf.subarray(7))).toEqual(['ef'])
  expect(cutter.done).toBe(true)
  expect(cutter.bytesRead).toBe(3)
  expect(cutter.push(Buffer.from('more\n'))).toEqual([]) // ignored once done
  // [3, 6): the '\n' at offset 2 = start - 1 means a line starts exactly at 3.
  const exact = new LineCutter({ start: 3, end: 6 })
  expect(exact.push(buf.subarray(2))).toEqual(['cd'])
  expect(exact.done).toBe(true)
})

test('a split inside one long line owns nothing and stops at that line\'s end', () => {
  const buf = Buffer.from('0123456789\nnext\n')
  const cutter = new LineCutter({ start: 3, end: 6 })
  expect(cutter.push(buf.subarray(2, 8))).toEqual([])
  expect(cutter.done).toBe(false)
  expect(cutter.push(buf.subarray(8, 12))).toEqual([]) // found the '\n' at 10: next line is at 11 >= 6
  expect(cutter.done).toBe(true)
  expect(cutter.bytesRead).toBe(0)
})

test('finish() returns the unterminated last line, CR stripped; an empty tail is no line', () => {
  const a = new LineCutter({ start: 0, end: 5 })
  expect(a.push(Buffer.from('x\r\nyz\r'))).toEqual(['x'])
  expect(a.finish()).toEqual(['yz'])
  expect(a.bytesRead).toBe(6)
  const b = new LineCutter({ start: 0, end: 2 })
  expect(b.push(Buffer.from('x\n'))).toEqual(['x'])
  expect(b.done).toBe(true)
  const c = new LineCutter({ start: 0, end: 3 })
  expect(c.push(Buffer.from('x\n'))).toEqual(['x']) // line 2 would start at 2 < 3, but EOF comes
  expect(c.done).toBe(false)
  expect(c.finish()).toEqual([])
  expect(c.done).toBe(true)
})

test('a character split across chunks is decoded whole', () => {
  const buf = Buffer.from('日本\n✓\n')
  const cutter = new LineCutter({ start: 0, end: buf.length })
  const lines: string[] = []
  for (let i = 0; i < buf.length; i++) lines.push(...cutter.push(buf.subarray(i, i + 1)))
  expect(lines).toEqual(['日本', '✓'])
})

test('rejects ranges that are not byte offsets', () => {
  expect(() => new LineCutter({ start: -1, end: 3 })).toThrow(RangeError)
  expect(() => new LineCutter({ start: 4, end: 3 })).toThrow(RangeError)
  expect(() => new LineCutter({ start: 0.5, end: 3 })).toThrow(RangeError)
  expect(new LineCutter({ start: 3, end: 3 }).done).toBe(true) // empty range: nothing to read
})
