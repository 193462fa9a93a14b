// W2 as a user would write it without an engine, one thread: the lines matching a regular expression.
// `bun w2-idiomatic.ts FILE...` prints the number of matching lines of the given files.
import { readFileSync } from 'node:fs'

const re = /\bth[a-z]*ing\b/i
let n = 0
for (const f of process.argv.slice(2)) {
  for (const line of readFileSync(f, 'utf8').split('\n')) if (re.test(line)) n++
}
console.log(n)
