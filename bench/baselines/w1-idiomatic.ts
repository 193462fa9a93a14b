// W1 as a user would write it without an engine: read, lowercase, split, count in a Map.
import { readdirSync, readFileSync } from 'node:fs'

const dir = process.argv[2]!
const counts = new Map<string, number>()
for (const f of readdirSync(dir).sort()) {
  for (const line of readFileSync(`${dir}/${f}`, 'utf8').split('\n')) {
    for (const w of line.toLowerCase().split(/[^a-z0-9]+/)) if (w) counts.set(w, (counts.get(w) ?? 0) + 1)
  }
}
console.log(counts.size)
