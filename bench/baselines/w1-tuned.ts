// W1 tuned for this runtime, one thread: the per-core limit of Bun. Bytes in, no string per token:
// each token is lowercased and hashed as it is scanned, and counted in an open-addressing table
// whose keys live in one byte arena; strings are made once per distinct word, at the end.
// `bun w1-tuned.ts OUT FILE...` writes `word<TAB>count` lines for the given files to OUT.
import { closeSync, openSync, readSync, fstatSync, writeFileSync } from 'node:fs'

const [out, ...files] = process.argv.slice(2)

// byte → its lowercase form when it is [A-Za-z0-9], 0 when it separates tokens
const LOWER = new Uint8Array(256)
for (let b = 0x30; b <= 0x39; b++) LOWER[b] = b
for (let b = 0x61; b <= 0x7a; b++) LOWER[b] = b
for (let b = 0x41; b <= 0x5a; b++) LOWER[b] = b + 0x20

let cap = 1 << 18
let mask = cap - 1
let hashes = new Int32Array(cap)
let offs = new Int32Array(cap).fill(-1)
let lens = new Int32Array(cap)
let counts = new Int32Array(cap)
let size = 0
let arena = new Uint8Array(1 << 22)
let arenaUsed = 0

function grow(): void {
  const oh = hashes, oo = offs, ol = lens, oc = counts
  cap *= 2
  mask = cap - 1
  hashes = new Int32Array(cap); offs = new Int32Array(cap).fill(-1); lens = new Int32Array(cap); counts = new Int32Array(cap)
  for (let i = 0; i < oh.length; i++) {
    if (oo[i] === -1) continue
    let s = oh[i]! & mask
    while (offs[s] !== -1) s = (s + 1) & mask
    hashes[s] = oh[i]!; offs[s] = oo[i]!; lens[s] = ol[i]!; counts[s] = oc[i]!
  }
}

/** Counts the token buf[start, end) (already known to be [a-z0-9] once lowercased) with hash h. */
function add(buf: Uint8Array, start: number, end: number, h: number): void {
  const len = end - start
  let s = h & mask
  for (;;) {
    const o = offs[s]!
    if (o === -1) break
    if (hashes[s] === h && lens[s] === len) {
      let i = 0
      while (i < len && arena[o + i] === LOWER[buf[start + i]!]) i++
      if (i === len) { counts[s]!++; return }
    }
    s = (s + 1) & mask
  }
  if (arenaUsed + len > arena.length) { const a = new Uint8Array(arena.length * 2); a.set(arena); arena = a }
  for (let i = 0; i < len; i++) arena[arenaUsed + i] = LOWER[buf[start + i]!]!
  hashes[s] = h; offs[s] = arenaUsed; lens[s] = len; counts[s] = 1
  arenaUsed += len
  if (++size * 2 > cap) grow()
}

/** Scans buf[0, n); returns where an unfinished token at the end starts (n when there is none). */
function scan(buf: Uint8Array, n: number, last: boolean): number {
  let i = 0
  while (i < n) {
    let c = LOWER[buf[i]!]!
    if (c === 0) { i++; continue }
    const start = i
    let h = 0x811c9dc5 | 0
    do { h = Math.imul(h ^ c, 0x01000193); i++ } while (i < n && (c = LOWER[buf[i]!]!) !== 0)
    if (i === n && !last) return start
    add(buf, start, i, h)
  }
  return n
}

const CHUNK = 8 << 20
let buf = new Uint8Array(CHUNK)
for (const f of files) {
  const fd = openSync(f, 'r')
  const fileSize = fstatSync(fd).size
  let carry = 0
  let read = 0
  for (;;) {
    if (carry === buf.length) { const b = new Uint8Array(buf.length * 2); b.set(buf); buf = b }
    const got = readSync(fd, buf, carry, buf.length - carry, null)
    read += got
    const n = carry + got
    const last = got === 0 || read >= fileSize
    const rest = scan(buf, n, last)
    if (last) break
    buf.copyWithin(0, rest, n)
    carry = n - rest
  }
  closeSync(fd)
}

const lines: string[] = []
const decoder = new TextDecoder('latin1')
for (let s = 0; s < cap; s++) {
  if (offs[s] === -1) continue
  lines.push(`${decoder.decode(arena.subarray(offs[s]!, offs[s]! + lens[s]!))}\t${counts[s]}`)
}
writeFileSync(out!, lines.length > 0 ? lines.join('\n') + '\n' : '')
