// `bun bench/lib/profile-top.ts FILE.cpuprofile [N]`: the functions with the most self time and the
// most total (inclusive) time in a Chrome/V8 CPU profile, such as `bun --cpu-prof` writes.
import { readFileSync } from 'node:fs'

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
const prof = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] }
const top = Number(process.argv[3] ?? 25)
const byId = new Map(prof.nodes.map(n => [n.id, n]))
const parent = new Map<number, number>()
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const name = (n: Node): string => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(src|bench|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`
const self = new Map<string, number>()
const total = new Map<string, number>()
let all = 0
prof.samples.forEach((id, i) => {
  const dt = prof.timeDeltas[i] ?? 0
  all += dt
  const n = byId.get(id)!
  self.set(name(n), (self.get(name(n)) ?? 0) + dt)
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur)!)
    if (!seen.has(k)) { seen.add(k); total.set(k, (total.get(k) ?? 0) + dt) }
  }
})
const show = (title: string, m: Map<string, number>): void => {
  console.log(`${title} (of ${(all / 1000).toFixed(0)} ms sampled)`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(v / 1000).toFixed(0).padStart(8)} ms ${(100 * v / all).toFixed(1).padStart(5)}%  ${k}`)
}
show('self time', self)
show('total time', total)
