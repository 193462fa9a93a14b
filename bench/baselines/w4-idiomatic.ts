// W4 as a user would write it without an engine, one thread: the records whose key falls in this
// process's range, sorted by key. `bun w4-idiomatic.ts OUT PART PARTS FILE...` keeps the records whose
// first key byte is in the PART-th of PARTS equal slices of '!'..'~', sorts them by their 10-char
// key, and writes them to OUT (range partitions: the parts in order are the sorted whole).
import { readFileSync, writeFileSync } from 'node:fs'

const [out, partArg, partsArg, ...files] = process.argv.slice(2)
const part = Number(partArg), parts = Number(partsArg)
const lo = 0x21 + Math.floor(94 * part / parts), hi = 0x21 + Math.floor(94 * (part + 1) / parts)
const keyed: [string, string][] = []
for (const f of files) {
  for (const line of readFileSync(f, 'latin1').split('\n')) {
    if (line === '') continue
    const c = line.charCodeAt(0)
    if (c >= lo && c < hi) keyed.push([line.slice(0, 10), line])
  }
}
keyed.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
const lines: string[] = []
for (const [, line] of keyed) lines.push(line)
const text = lines.length > 0 ? lines.join('\n') + '\n' : ''
writeFileSync(out!, text, 'latin1')
