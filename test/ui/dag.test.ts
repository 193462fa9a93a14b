// The DAG view behind the web UI (GET /jobs/:id/dag), from real stage plans: edges inside stages,
// shuffle edges between them, a sort's sampled ranges, and nodes computed in several stages.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { JobRequest } from '../../src/api/jobs'
import { validateJob } from '../../src/engine/dag'
import { planStages } from '../../src/engine/plan'
import type { StagePlan } from '../../src/api/tasks'
import type { JobDag } from '../../src/api/dag'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { ROOT, killAll, startCluster, tempDir, type Cluster } from '../support/cluster'
import { jobDag } from '../../src/roles/master/routes/dag'

const view = (req: JobRequest) => jobDag('job-1', req, planStages(validateJob(req), 4))
const edges = (req: JobRequest): string[] =>
  view(req).edges.map(e => `${e.from_stage}:${e.from} -${e.kind}-> ${e.to_stage}:${e.to}`)

// A broadcast join (customers is small), a union (orders and more) and a sort: every edge the
// plan has, by hand, in the order of the stages.
const BROADCAST_UNION_SORT: JobRequest = { nodes: [
  { id: 'orders', op: 'read_text', path: 'orders' },
  { id: 'customers', op: 'read_text', path: 'customers' },
  { id: 'more', op: 'read_text', path: 'more' },
  { id: 'ko', op: 'key_by', input: 'orders', fn: 'l => l' },
  { id: 'km', op: 'key_by', input: 'more', fn: 'l => l' },
  { id: 'all', op: 'union', inputs: ['ko', 'km'] },
  { id: 'kc', op: 'key_by', input: 'customers', fn: 'l => l' },
  { id: 'j', op: 'join', inputs: ['all', 'kc'] },
  { id: 'sums', op: 'reduce_by_key', input: 'j', fn: '(a, b) => a' },
  { id: 'sorted', op: 'sort', input: 'sums' },
  { id: 'out', op: 'collect', input: 'sorted' },
] }
const SIZES = { sourceBytes: new Map([['orders', 1e9], ['more', 1e9], ['customers', 100]]), maxBytes: 1000 }


describe('the DAG view', () => {
  test('word count: two stages, narrow edges inside, one shuffle edge between', () => {
    const req: JobRequest = { nodes: [
      { id: 'lines', op: 'read_text', path: 'books' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
      { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 8 },
      { id: 'out', op: 'write_text', input: 'counts', path: 'out' },
    ] }
    const v = view(req)
    expect(v.stages.map(s => [s.stage_id, s.kind, s.nodes.map(n => n.id)])).toEqual([
      [0, 'source', ['lines', 'words', 'pairs']], [1, 'shuffle', ['counts', 'out']]])
    expect(edges(req).sort()).toEqual(['0:lines -narrow-> 0:words', '0:words -narrow-> 0:pairs', '0:pairs -shuffle-> 1:counts', '1:counts -narrow-> 1:out'].sort())
    expect(v.nodes.find(n => n.id === 'counts')).toEqual({ id: 'counts', op: 'reduce_by_key', inputs: ['pairs'], stage_ids: [1], detail: '(a, b) => a + b · 8 partitions' })
    expect(v.nodes.find(n => n.id === 'lines')?.detail).toBe('books')
  })

  test('a join reads two shuffles; a union runs in the stage of each input', () => {
    const req: JobRequest = { nodes: [
      { id: 'a', op: 'read_text', path: 'a' },
      { id: 'b', op: 'read_text', path: 'b' },
      { id: 'ka', op: 'key_by', input: 'a', fn: 'x => x' },
      { id: 'kb', op: 'key_by', input: 'b', fn: 'x => x' },
      { id: 'both', op: 'union', inputs: ['ka', 'kb'] },
      { id: 'j', op: 'join', inputs: ['ka', 'kb'] },
      { id: 'n', op: 'count', input: 'both' },
      { id: 'out', op: 'collect', input: 'j' },
    ] }
    const v = view(req)
    expect(edges(req).filter(e => e.includes('shuffle')).sort()).toEqual(['0:ka -shuffle-> 2:j', '1:kb -shuffle-> 2:j'])
    expect(v.nodes.find(n => n.id === 'both')?.stage_ids).toEqual([0, 1])
    // inside stage 0 the union reads ka only; kb reaches it in stage 1
    expect(edges(req)).toContain('0:ka -narrow-> 0:both')
    expect(edges(req)).toContain('1:kb -narrow-> 1:both')
    expect(edges(req)).not.toContain('0:kb -narrow-> 0:both')
  })

  test('a sort: its sample stage feeds the sort\'s ranges', () => {
    const req: JobRequest = { nodes: [
      { id: 'lines', op: 'read_text', path: 'x' },
      { id: 'sorted', op: 'sort', input: 'lines', key: 'l => l.length', descending: true },
      { id: 'out', op: 'collect', input: 'sorted' },
    ] }
    const v = view(req)
    const sample = v.stages.find(s => s.sample_of === 'sorted')
    expect(sample).toBeDefined()
    expect(sample!.nodes.map(n => n.op)).toEqual(['read_text', 'sample'])
    // the ranges are used by the stage that writes the sort's shuffle (here the source stage)
    const writer = v.stages.find(s => s.sample_of === null && s.nodes[0]?.id === 'lines')!
    expect(v.edges).toContainEqual({ from_stage: sample!.stage_id, from: sample!.nodes[1]!.id, to_stage: writer.stage_id, to: 'lines', kind: 'bounds' })
    expect(v.edges.filter(e => e.kind === 'shuffle' && e.to === 'sorted')).toHaveLength(1)
    expect(v.nodes.find(n => n.id === 'sorted')?.detail).toBe('key l => l.length · descending')
  })

  test('a job with no plan (refused before planning) gives its nodes without stages', () => {
    const v = jobDag('job-2', { nodes: [{ id: 'a', op: 'read_text', path: 'x' }] }, [])
    expect(v).toEqual({ job_id: 'job-2', nodes: [{ id: 'a', op: 'read_text', inputs: [], stage_ids: [], detail: 'x' }], stages: [], edges: [] })
  })

  test('a broadcast join, a union and a sort: the broadcast edges and where the sampled ranges go', () => {
    const plans = planStages(validateJob(BROADCAST_UNION_SORT), 4, SIZES)
    const v = jobDag('job-3', BROADCAST_UNION_SORT, plans)
    const got = v.edges.map(e => `${e.from_stage}:${e.from} -${e.kind}-> ${e.to_stage}:${e.to}`).sort()
    expect(got).toEqual([
      '0:all -narrow-> 0:j', '0:j -shuffle-> 3:sums', '0:j -shuffle-> 4:sums', '0:ko -narrow-> 0:all', '0:orders -narrow-> 0:ko',
      '1:customers -narrow-> 1:kc', '1:kc -broadcast-> 0:j', '1:kc -broadcast-> 2:j',
      '2:all -narrow-> 2:j', '2:j -shuffle-> 3:sums', '2:j -shuffle-> 4:sums', '2:km -narrow-> 2:all', '2:more -narrow-> 2:km',
      '3:sums -shuffle-> 5:sorted', '4:sorted#sample -bounds-> 3:sums', '4:sums -narrow-> 4:sorted#sample', '5:sorted -narrow-> 5:out',
    ].sort())
    expectPlanEdges(v, plans)
  })

  test('every example job and more shapes: the DAG\'s edges between stages are exactly the plan\'s', () => {
    const dir = join(import.meta.dir, '../../examples')
    const jobs: JobRequest[] = readdirSync(dir).filter(f => f.endsWith('.json')).map(f => JSON.parse(readFileSync(join(dir, f), 'utf8')) as JobRequest)
    jobs.push(BROADCAST_UNION_SORT)
    // a sort after a broadcast join whose large side is a union: the sample and the writer copy the join
    jobs.push({ nodes: [...BROADCAST_UNION_SORT.nodes.filter(n => n.id !== 'sums' && n.id !== 'sorted' && n.id !== 'out'),
      { id: 'sorted', op: 'sort', input: 'j' }, { id: 'w', op: 'write_text', input: 'sorted', path: 'o' }] })
    expect(jobs.length).toBeGreaterThan(5)
    for (const job of jobs) {
      const valid = validateJob(job)
      const sources = new Map(job.nodes.filter(n => n.op.startsWith('read_')).map(n => [n.id, n.id === 'customers' || n.path?.includes('customers') ? 100 : 1e9]))
      for (const plans of [planStages(valid, 3), planStages(valid, 3, { sourceBytes: sources, maxBytes: 1000 })]) {
        expectPlanEdges(jobDag('j', job, plans), plans)
      }
    }
  })
})

/** Independent of dag.ts: each stage dependency of the plan is drawn (and nothing else between
 *  stages), each shuffle a stage writes reaches each stage that reads it, and each broadcast the
 *  join that holds it. */
function expectPlanEdges(v: JobDag, plans: readonly StagePlan[]): void {
  const across = new Set(v.edges.filter(e => e.from_stage !== e.to_stage).map(e => `${e.from_stage}->${e.to_stage}`))
  const deps = new Set(plans.flatMap(p => p.depends_on.map(d => `${d}->${p.stage_id}`)))
  expect([...across].sort()).toEqual([...deps].sort())
  const has = (from: number, node: string, to: number, target: string, kind: string): boolean =>
    v.edges.some(e => e.from_stage === from && e.from === node && e.to_stage === to && e.to === target && e.kind === kind)
  for (const p of plans) {
    for (const w of p.shuffle_writes) {
      for (const r of plans) {
        if (r.root.kind === 'shuffle' && r.root.shuffle_ids.includes(w.shuffle_id)) expect(has(p.stage_id, w.from, r.stage_id, r.root.node.id, 'shuffle')).toBe(true)
        for (const b of r.broadcasts ?? []) if (b.shuffle_id === w.shuffle_id) expect(has(p.stage_id, w.from, r.stage_id, b.node_id, 'broadcast')).toBe(true)
      }
    }
    // inside a stage: an edge for each input computed in the same stage
    for (const n of p.nodes) {
      for (const i of n.inputs ?? (n.input === undefined ? [] : [n.input])) {
        const here = p.root.node.id === i || p.nodes.slice(0, p.nodes.indexOf(n)).some(m => m.id === i)
        if (here) expect(has(p.stage_id, i, p.stage_id, n.id, 'narrow')).toBe(true)
      }
    }
  }
}

// The drawing in Chromium (as test/ui/browser.test.ts drives it), for a job of 6 stages with a
// broadcast join, a union and a sort on a real cluster, in a window narrower than the drawing
// would be side by side: nothing is cut off, and each stage is below every stage it waits for.
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

describe.skipIf(!existsSync(CHROMIUM))('the DAG drawn in Chromium', () => {
  let c: Cluster | undefined
  let browser: Browser | undefined
  let page: Page | undefined
  let jobId = ''

  beforeAll(async () => {
    const data = tempDir('ms-dag-ui-')
    for (const [name, n] of [['orders', 300], ['more', 200], ['customers', 40]] as const) {
      mkdirSync(join(data, name))
      writeFileSync(join(data, name, 'part-0.txt'), Array.from({ length: n }, (_, i) => `k${i % 40}`).join('\n') + '\n')
    }
    c = await startCluster({ workers: 2, slots: 1, dataDir: data })
    jobId = await c.client.submit({ name: 'dag-drawing', nodes: BROADCAST_UNION_SORT.nodes })
    const done = await c.client.waitDone(jobId, { timeoutMs: 30_000, pollMs: 50 })
    if (done.state !== 'SUCCEEDED') throw new Error(`the job ${done.state}: ${JSON.stringify(done.error)}`)
    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
    page = await (await browser.newContext({ viewport: { width: 1000, height: 800 } })).newPage()
    page.setDefaultTimeout(15_000)
  }, 90_000)

  afterAll(async () => {
    await browser?.close().catch(() => {})
    await c?.stop()
    killAll()
  })

  test('every stage and edge of /dag is drawn, inside the page, in dependency order', async () => {
    const dag = await (await fetch(`${c!.url}/jobs/${jobId}/dag`)).json() as JobDag
    expect(dag.edges.filter(e => e.kind === 'broadcast')).toHaveLength(2)
    const tab = page!
    await tab.goto(`${c!.url}/#/jobs/${jobId}`)
    await tab.locator('#dag svg g.stage').first().waitFor()
    mkdirSync(join(ROOT, 'test', 'artifacts'), { recursive: true })
    await tab.locator('#dag').screenshot({ path: join(ROOT, 'test', 'artifacts', 'ui-dag.png') })
    type Rect = { left: number; right: number; top: number; bottom: number }
    type El = { getBoundingClientRect(): Rect; querySelector(q: string): El; getAttribute(a: string): string; scrollWidth: number; clientWidth: number }
    const seen = await tab.evaluate(() => {
      const document = (globalThis as unknown as { document: { querySelector(q: string): El; querySelectorAll(q: string): El[] } }).document
      const rect = (el: El): Rect => {
        const r = el.getBoundingClientRect()
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom }
      }
      const box = document.querySelector('#dag')
      const stages: Record<string, Rect> = {}
      for (const g of document.querySelectorAll('#dag g.stage')) stages[g.getAttribute('data-stage')] = rect(g.querySelector('rect.box'))
      return { box: rect(box), scrollWidth: box.scrollWidth, clientWidth: box.clientWidth, svg: rect(box.querySelector('svg')), stages }
    })
    // not cut off: no horizontal scrolling, and every stage inside the drawing's box
    expect(seen.scrollWidth).toBeLessThanOrEqual(seen.clientWidth)
    expect(seen.svg.right).toBeLessThanOrEqual(seen.box.right + 0.5)
    for (const r of Object.values(seen.stages)) {
      expect(r.left).toBeGreaterThanOrEqual(seen.svg.left - 0.5)
      expect(r.right).toBeLessThanOrEqual(seen.svg.right + 0.5)
      expect(r.bottom).toBeLessThanOrEqual(seen.svg.bottom + 0.5)
    }
    // dependency order: a stage's box starts below the box of each stage it waits for
    for (const s of dag.stages) {
      for (const d of s.depends_on) expect(seen.stages[String(d)]!.bottom).toBeLessThan(seen.stages[String(s.stage_id)]!.top)
    }
    expect(await tab.locator('#dag g.stage').count()).toBe(dag.stages.length)
    expect(await tab.locator('#dag path.edge').count()).toBe(dag.edges.length)
    for (const kind of ['narrow', 'shuffle', 'broadcast', 'bounds'] as const) {
      expect(await tab.locator(`#dag path.edge.${kind}`).count()).toBe(dag.edges.filter(e => e.kind === kind).length)
    }
  }, 60_000)
})
