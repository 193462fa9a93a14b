// k-means (Lloyd's algorithm) through the TypeScript SDK, on points such as bench/gen/gen-points.mjs
// writes (one point a line, its coordinates separated by spaces).
//
//   npx bun examples/kmeans.ts [--master URL [--token T] | --workers N --data-dir DIR]
//     --input GLOB [--k 8] [--iterations 10] [--epsilon 0] [--no-cache] [--timings FILE]
//
// The points are parsed once and cached: the first job (which picks the first k points as the
// initial centroids) keeps them on the workers, and every iteration reads them there. An
// iteration is one job: each point goes to its nearest centroid (the centroids travel as params),
// and the sum and count of each centroid's points come back; the new centroid is their mean (a
// centroid with no point stays where it is). It stops after --iterations, or once no centroid
// moved more than --epsilon. Prints the centroids as JSON; --timings writes
// {"cached", "iterations": [{"i", "seconds"}], "total_s"}.
import { writeFileSync } from 'node:fs'
import { connect, local, type Session } from 'minispark'

export type KMeansOptions = {
  k: number
  iterations: number
  /** stop once no centroid moved farther than this (default 0: run every iteration) */
  epsilon?: number
  /** cache the parsed points (default true) */
  cache?: boolean
  partitions?: number
  onIteration?: (i: number, seconds: number) => void
}

export type KMeansResult = { initial: number[][]; centroids: number[][]; iterations: number }

export async function kMeans(ms: Session, input: string, o: KMeansOptions): Promise<KMeansResult> {
  const points = ms.textFile(input, { name: 'lines' })
    .filter(l => l.trim() !== '', { name: 'nonblank' })
    .map(l => l.trim().split(/\s+/).map(Number), { name: 'points' })
  if (o.cache ?? true) points.cache()

  const initial = await points.collect({ limit: o.k, name: 'k-means initial centroids' })
  if (initial.length === 0) throw new Error(`no points in ${input}`)
  let centroids = initial.map(p => [...p])
  let done = 0
  for (let i = 1; i <= o.iterations; i++) {
    const t0 = performance.now()
    const sums = await points
      .withParams({ centroids })
      .map((p, prm): [number, [number[], number]] => {
        let best = 0
        let bestD = Infinity
        prm.centroids.forEach((c, j) => {
          let d = 0
          for (let x = 0; x < c.length; x++) d += (p[x]! - c[x]!) ** 2
          if (d < bestD) { bestD = d; best = j }
        })
        return [best, [p, 1]]
      }, { name: 'nearest' })
      .reduceByKey(([a, n], [b, m]) => [a.map((x, d) => x + b[d]!), n + m], { name: 'sums', ...(o.partitions === undefined ? {} : { partitions: o.partitions }) })
      .collect({ name: `k-means iteration ${i}` })
    const next = centroids.map(c => [...c])
    for (const [j, [sum, n]] of sums) next[j] = sum.map(x => x / n)
    const moved = Math.max(...next.map((c, j) => Math.hypot(...c.map((x, d) => x - centroids[j]![d]!))))
    centroids = next
    done = i
    o.onIteration?.(i, (performance.now() - t0) / 1000)
    if (moved <= (o.epsilon ?? 0)) break
  }
  await points.unpersist()
  return { initial, centroids, iterations: done }
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
  if (input === undefined) {
    process.stderr.write('usage: npx bun examples/kmeans.ts [--master URL [--token T] | --workers N --data-dir DIR] --input GLOB [--k K] [--iterations N] [--epsilon E] [--no-cache] [--timings FILE]\n')
    process.exit(2)
  }
  const master = flag('--master')
  const token = flag('--token')
  const cache = !process.argv.includes('--no-cache')
  const ms = master !== undefined
    ? await connect(master, token === undefined ? {} : { token })
    : await local({ workers: Number(flag('--workers') ?? 2), dataDir: flag('--data-dir') ?? '.' })
  try {
    const times: { i: number; seconds: number }[] = []
    const t0 = performance.now()
    const r = await kMeans(ms, input, {
      k: Number(flag('--k') ?? 8), iterations: Number(flag('--iterations') ?? 10), epsilon: Number(flag('--epsilon') ?? 0), cache,
      onIteration: (i, seconds) => {
        times.push({ i, seconds: Number(seconds.toFixed(3)) })
        process.stderr.write(`iteration ${i}: ${seconds.toFixed(2)} s\n`)
      },
    })
    console.log(JSON.stringify({ iterations: r.iterations, centroids: r.centroids }))
    const timings = flag('--timings')
    if (timings !== undefined) {
      writeFileSync(timings, JSON.stringify({ cached: cache, iterations: times, total_s: Number(((performance.now() - t0) / 1000).toFixed(3)) }, null, 1) + '\n')
    }
  } finally {
    await ms.stop()
  }
}

if (import.meta.main) await main()
