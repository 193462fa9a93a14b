// PageRank through the TypeScript SDK, as Spark's example computes it: links = the distinct
// (src, dst) edges grouped by src; every src starts at rank 1.0; each iteration every src with a
// rank sends rank / out-degree to each dst, and a node's new rank is 0.15 + 0.85 × what it
// received (only nodes that received something keep a rank).
//
//   npx bun examples/pagerank.ts [--master URL [--token T] | --workers N --max-mem M --data-dir DIR]
//     --input GLOB --out DIR [--iterations 10] [--no-cache] [--partitions P] [--timings FILE]
//
// Paths are the workers' (relative to their data dir; with no --master, an embedded cluster of
// --workers workers over --data-dir, default the current directory). Input lines are "SRC DST"
// (bench/gen/gen-graph.mjs); the output is "node<TAB>rank" part files, ranks to 9 significant
// digits (bench/gen/verify.sh W5).
//
// Every iteration is a job of its own (so that each is timed): its ranks are persisted and the
// previous ones freed. links are cached: the first iteration computes them from the input files
// and keeps them on the workers, the later ones read them there. With --no-cache every iteration
// computes links from the input files again (the ranks still go from one iteration to the next
// as a persisted dataset: without that, iteration i would recompute the i - 1 before it).
// --timings writes {"cached", "iterations": [{"i", "seconds"}], "total_s", "write_s"}.
import { writeFileSync } from 'node:fs'
import { connect, local, type KeyedDataset, type Session } from 'minispark'

export type PageRankOptions = {
  iterations: number
  /** cache links (default true) */
  cache?: boolean
  /** partitions of the wide steps (default: the cluster's) */
  partitions?: number
  /** called after each iteration's job with its wall time (awaited before the next) */
  onIteration?: (i: number, seconds: number) => void | Promise<void>
}

/** The ranks after `o.iterations` iterations, a persisted dataset (unpersist() it when done). */
export async function pageRank(ms: Session, input: string, o: PageRankOptions): Promise<KeyedDataset<number, number>> {
  const wide = o.partitions === undefined ? {} : { partitions: o.partitions }
  const links = ms.textFile(input, { name: 'edges' })
    .filter(l => l !== '', { name: 'nonblank' })
    .map(l => {
      const sp = l.indexOf(' ')
      return [Number(l.slice(0, sp)), Number(l.slice(sp + 1))] as [number, number]
    }, { name: 'edge' })
    .distinct({ ...wide, name: 'distinct' })
    .groupByKey({ ...wide, name: 'links' })
  if (o.cache ?? true) links.cache()

  let ranks: KeyedDataset<number, number> = links.mapValues(() => 1.0, { name: 'ranks0' })
  for (let i = 1; i <= o.iterations; i++) {
    const t0 = performance.now()
    const contribs = links.join(ranks, { ...wide, name: `join${i}` })
      .flatMap(([, [dsts, rank]]) => dsts.map((d): [number, number] => [d, rank / dsts.length]), { name: `contribs${i}` })
    const next = contribs
      .reduceByKey((a, b) => a + b, { ...wide, name: `sums${i}` })
      .mapValues(s => 0.15 + 0.85 * s, { name: `ranks${i}` })
      .persist()
    await next.count({ name: `pagerank iteration ${i}` })
    await ranks.unpersist()
    ranks = next
    await o.onIteration?.(i, (performance.now() - t0) / 1000)
  }
  if (!(o.cache ?? true)) return ranks
  // links stay kept for the session otherwise; the caller keeps only the ranks.
  await links.unpersist()
  return ranks
}

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(name)
  if (at < 0) return undefined
  const v = process.argv[at + 1]
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`)
  return v
}

async function main(): Promise<void> {
  const input = flag('--input')
  const out = flag('--out')
  if (input === undefined || out === undefined) {
    process.stderr.write('usage: npx bun examples/pagerank.ts [--master URL [--token T] | --workers N --max-mem M --data-dir DIR] --input GLOB --out DIR [--iterations N] [--no-cache] [--partitions P] [--timings FILE]\n')
    process.exit(2)
  }
  const iterations = Number(flag('--iterations') ?? 10)
  const partitions = flag('--partitions')
  const cache = !process.argv.includes('--no-cache')
  const master = flag('--master')
  const token = flag('--token')
  const ms = master !== undefined
    ? await connect(master, token === undefined ? {} : { token })
    : await local({ workers: Number(flag('--workers') ?? 2), maxMem: flag('--max-mem') ?? '1GiB', dataDir: flag('--data-dir') ?? '.' })
  try {
    const times: { i: number; seconds: number }[] = []
    const t0 = performance.now()
    const ranks = await pageRank(ms, input, {
      iterations, cache, ...(partitions === undefined ? {} : { partitions: Number(partitions) }),
      onIteration: (i, seconds) => {
        times.push({ i, seconds: Number(seconds.toFixed(3)) })
        process.stderr.write(`iteration ${i}: ${seconds.toFixed(2)} s\n`)
      },
    })
    const iterated = performance.now()
    // 9 significant digits, as bench/gen/ref-pagerank.mjs writes them: verify.sh W5 rounds to 4
    // decimals, and rounding the full doubles instead could tip a tie the other way.
    const written = await ranks.map(([n, r]) => `${n}\t${r.toPrecision(9)}`, { name: 'lines' }).saveAsTextFile(out, { overwrite: true, name: 'pagerank output' })
    await ranks.unpersist()
    const total = (performance.now() - t0) / 1000
    process.stderr.write(`${written.records} ranks in ${written.path} (${written.files} files), ${total.toFixed(2)} s\n`)
    const timings = flag('--timings')
    if (timings !== undefined) {
      writeFileSync(timings, JSON.stringify({
        cached: cache, iterations: times, total_s: Number(total.toFixed(3)),
        write_s: Number(((performance.now() - iterated) / 1000).toFixed(3)),
      }, null, 1) + '\n')
    }
  } finally {
    await ms.stop()
  }
}

if (import.meta.main) await main()
