// Word count through the TypeScript SDK: `npx bun examples/wordcount.ts` runs it on an embedded
// cluster of 2 workers over examples/data; `--master URL` runs it on a running master instead
// (whose workers' --data-dir holds books/). The same job as examples/wordcount.json.
import { connect, local } from 'minispark'

const dataDir = new URL('./data', import.meta.url).pathname
const at = process.argv.indexOf('--master')
const master = at >= 0 ? process.argv[at + 1] : undefined
const ms = master !== undefined ? await connect(master) : await local({ workers: 2, dataDir })

try {
  const counts = ms.textFile('books/*.txt')
    .flatMap(line => line.toLowerCase().split(/[^a-z0-9]+/).filter(w => w !== ''))
    .map(w => [w, 1] as const)                 // KeyedDataset<string, number>
    .reduceByKey((a, b) => a + b)
    .named('counts')

  // Values from the program reach the workers as params, never through a closure.
  const common = counts.withParams({ minCount: 2 }).filter(([, n], p) => n >= p.minCount)
  const written = await common.saveAsTextFile('out/wordcount-sdk', { overwrite: true, progress: true, name: 'wordcount-sdk' })
  console.log(`wrote ${written.records} words to ${written.path} (${written.files} files)`)

  const top = (await counts.collect()).sort((a, b) => b[1] - a[1]).slice(0, 10)
  console.log('the 10 most frequent words:')
  for (const [word, n] of top) console.log(`${String(n).padStart(8)}  ${word}`)
} finally {
  await ms.stop()
}
