// W1 as a user would write it without an engine, one thread: read, lowercase, split, count in a Map.
// `bun w1-idiomatic.ts OUT FILE...` writes `word<TAB>count` lines for the given files to OUT.
import { readFileSync, writeFileSync } from 'node:fs'

const [out, ...files] = process.argv.slice(2)
const counts = new Map<string, number>()
for (const f of files) {
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    for (const w of line.toLowerCase().split(/[^a-z0-9]+/)) if (w) counts.set(w, (counts.get(w) ?? 0) + 1)
  }
}
let text = ''
for (const [w, n] of counts) text += `${w}\t${n}\n`
writeFileSync(out!, text)
