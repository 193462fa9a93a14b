// `npm run demo`: word count of the sample books on an embedded cluster of 2 workers, then the
// 20 most frequent words, read back from the job's output files.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderResult, runLocal } from '../src/roles/local'
import type { JobRequest } from '../src/api/jobs'

const here = new URL('.', import.meta.url).pathname
const dataDir = join(here, 'data')
const job = JSON.parse(readFileSync(join(here, 'wordcount.json'), 'utf8')) as JobRequest

const started = performance.now()
const { status, result } = await runLocal(job, { workers: 2, slots: 1, maxMem: '1GiB', dataDir, keep: false, json: false })
if (status.state !== 'SUCCEEDED' || result === null) {
  console.error(`the job ${status.state}: ${status.error?.message ?? ''}`)
  process.exit(1)
}
console.log(renderResult(result))
console.log(`(job ${status.job_id} on 2 workers, ${((performance.now() - started) / 1000).toFixed(1)} s including cluster start)\n`)

const out = join(dataDir, 'out', 'wordcount')
const counts: [string, number][] = []
for (const f of readdirSync(out).filter(f => f.startsWith('part-')).sort()) {
  for (const line of readFileSync(join(out, f), 'utf8').split('\n')) if (line) counts.push(JSON.parse(line) as [string, number])
}
counts.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
console.log('the 20 most frequent words:')
for (const [word, n] of counts.slice(0, 20)) console.log(`${String(n).padStart(8)}  ${word}`)
