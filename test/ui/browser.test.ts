// The web UI and Swagger UI in a real browser: Debian's Chromium, driven by playwright-core,
// against a local cluster (a master and 3 worker processes). Every request the pages make outside
// the master is refused and recorded: the pages must work with no internet. Screenshots go to
// test/artifacts/ (ignored by git) so that a failure can be looked at.
// Without /usr/bin/chromium (a dev machine; .ci/run installs it) the tests are skipped.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { ROOT, generateText, killAll, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'

const CHROMIUM = '/usr/bin/chromium'
const HAVE_CHROMIUM = existsSync(CHROMIUM)
if (!HAVE_CHROMIUM) console.warn(`test/ui: ${CHROMIUM} is absent, so the browser tests are skipped (apt-get install chromium; .ci/run does)`)

const ARTIFACTS = join(ROOT, 'test', 'artifacts')
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

let c: Cluster | undefined
let browser: Browser | undefined
let context: BrowserContext | undefined
let page: Page | undefined
let jobId = ''
const outside: string[] = []

const cluster = (): Cluster => { if (c === undefined) throw new Error('the cluster did not start (see beforeAll)'); return c }
const tab = (): Page => { if (page === undefined) throw new Error('the browser did not start (see beforeAll)'); return page }
const shot = (name: string): Promise<Buffer> => tab().screenshot({ path: join(ARTIFACTS, `ui-${name}.png`), fullPage: true })

const WORDCOUNT = [
  { id: 'lines', op: 'read_text', path: 'books/*.txt' },
  { id: 'words', op: 'flat_map', input: 'lines', fn: 'line => line.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
  { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
  { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 4 },
  { id: 'out', op: 'write_text', input: 'counts', path: 'out/wc' },
]

describe.skipIf(!HAVE_CHROMIUM)('the web UI in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    const data = tempDir('ms-ui-data-')
    generateText(join(data, 'books'), 2, 3, 9)
    c = await startCluster({ workers: 3, slots: 1, dataDir: data, heartbeatTimeout: '2s', heartbeatInterval: '300ms' })
    jobId = await c.client.submit({ name: 'ui-wordcount', nodes: WORDCOUNT })
    const { chromium } = await import('playwright-core')
    // playwright gives the browser a fresh, empty profile (--user-data-dir) of its own.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    const origin = new URL(c.url).origin
    await context.route('**/*', route => {
      const url = route.request().url()
      if (url.startsWith(origin) || url.startsWith('data:')) return route.continue()
      outside.push(url)
      return route.abort()
    })
    page = await context.newPage()
    page.setDefaultTimeout(15_000)
    const status = await c.client.waitDone(jobId, { timeoutMs: 30_000, pollMs: 50 })
    if (status.state !== 'SUCCEEDED') throw new Error(`the job ${status.state}: ${JSON.stringify(status.error)}`)
  }, 60_000)

  afterAll(async () => {
    await browser?.close().catch(() => {})
    await c?.stop()
    killAll()
  })

  test('the jobs page lists the finished job with its state, duration and progress', async () => {
    await tab().goto(`${cluster().url}/`)
    const row = tab().locator(`#jobs-table tr[data-job="${jobId}"]`)
    await row.waitFor()
    await shot('jobs')
    expect(await row.locator('.badge').textContent()).toBe('SUCCEEDED')
    const text = (await row.textContent()) ?? ''
    expect(text).toContain('ui-wordcount')
    expect(text).toContain('100%')
    expect(text).toMatch(/\d+(\.\d)? (ms|s)/)
    // the job id links to its page
    await row.locator('a').click()
    await tab().waitForURL(`**/#/jobs/${jobId}`)
  }, 30_000)

  test('the job page shows its DAG with stages, the stage table, the timeline and every task attempt', async () => {
    await tab().goto(`${cluster().url}/#/jobs/${jobId}`)
    await tab().locator('#dag svg g.stage').first().waitFor()
    await tab().locator('#tasks-table tbody tr[data-task]').first().waitFor()
    await shot('job')
    const status = await cluster().client.status(jobId)
    const tasks = await cluster().client.tasks(jobId)
    // DAG: a box per stage, every node of the job drawn, a shuffle edge between the stages
    expect(await tab().locator('#dag g.stage').count()).toBe(status.stages.length)
    for (const n of WORDCOUNT) expect(await tab().locator(`#dag g.node[data-node="${n.id}"]`).count()).toBeGreaterThan(0)
    expect(await tab().locator('#dag path.edge.shuffle').count()).toBe(1)
    expect(await tab().locator('#dag g.stage.s-SUCCEEDED').count()).toBe(status.stages.length)
    // stages table
    const stageRows = tab().locator('#stages-table tbody tr[data-stage]')
    expect(await stageRows.count()).toBe(status.stages.length)
    expect(await stageRows.nth(1).textContent()).toContain('counts → out')
    // tasks table: one row per attempt, with worker, records and shuffle bytes
    const taskRows = tab().locator('#tasks-table tbody tr[data-task]')
    expect(await taskRows.count()).toBe(tasks.length)
    const first = tasks[0]!
    const row = tab().locator(`#tasks-table tr[data-task="${first.task_id}"][data-attempt="${first.attempt}"]`)
    const cells = await row.locator('td').allTextContents()
    expect(cells[2]).toBe(first.worker_id!)
    expect(cells[3]).toBe('SUCCEEDED')
    expect(cells[6]).toBe(first.records_in.toLocaleString('en-US'))
    expect(cells[8]).toMatch(/KiB|MiB|B$/)
    // timeline: a lane per worker that ran something, a bar per attempt
    const workers = new Set(tasks.map(t => t.worker_id))
    expect(await tab().locator('#timeline g.lane').count()).toBe(workers.size)
    expect(await tab().locator('#timeline rect.a').count()).toBe(tasks.length)
    // filtering the tasks by stage
    // (filtered by the master: the table changes once its answer is in)
    await tab().selectOption('#task-stage', '1')
    const inStage1 = tasks.filter(t => t.stage_id === 1).length
    await waitUntil('the stage-1 attempts only', async () => (await taskRows.count()) === inStage1 ? true : undefined, { timeoutMs: 5_000 })
    expect(await taskRows.count()).toBe(inStage1)
  }, 30_000)

  test('a running job updates live: RUNNING stages and bars, then SUCCEEDED, without a reload', async () => {
    const id = await cluster().client.submit({ name: 'ui-slow', nodes: [
      { id: 'lines', op: 'read_text', path: 'books/*.txt' },
      // 50 µs a line, a few seconds in all: long enough to watch the job run
      { id: 'slow', op: 'map', input: 'lines', fn: 'l => { const end = performance.now() + 0.05; while (performance.now() < end); return l }' },
      { id: 'n', op: 'count', input: 'slow' }] })
    await tab().goto(`${cluster().url}/#/jobs/${id}`)
    await tab().locator('#job-head .badge', { hasText: 'RUNNING' }).waitFor()
    await tab().locator('#dag g.stage.s-RUNNING').waitFor()
    await shot('job-running')
    await tab().locator('#job-head .badge', { hasText: 'SUCCEEDED' }).waitFor({ timeout: 30_000 })
    await tab().locator('#dag g.stage.s-SUCCEEDED').waitFor()
    expect(await tab().locator('#job-head').textContent()).toContain('100%')
  }, 45_000)

  test('the workers page shows a killed worker as DEAD within 15 s, greyed', async () => {
    await tab().goto(`${cluster().url}/#/workers`)
    for (const w of cluster().workerIds) await tab().locator(`#workers-table tr[data-worker="${w}"]`).waitFor()
    expect(await tab().locator('#workers-table tr[data-status="DEAD"]').count()).toBe(0)
    const victim = cluster().workers[1]!
    const killedAt = Date.now()
    victim.proc.kill('SIGKILL')
    const row = tab().locator(`#workers-table tr[data-worker="${victim.name}"][data-status="DEAD"]`)
    await row.waitFor({ timeout: 15_000 })
    expect(Date.now() - killedAt).toBeLessThan(15_000)
    await shot('workers')
    expect(await row.getAttribute('class')).toContain('dead')
    expect(await row.locator('.badge').textContent()).toBe('DEAD')
    expect(await tab().locator('#workers-table tr[data-status="IDLE"], #workers-table tr[data-status="BUSY"]').count()).toBe(2)
    expect(await tab().locator('#workers-summary').textContent()).toContain('2 alive, 1 dead')
  }, 30_000)

  test('Swagger UI renders the API\'s operations from assets inside the binary', async () => {
    await tab().goto(`${cluster().url}/swagger`)
    await tab().locator('.opblock').first().waitFor()
    await shot('swagger')
    const ops = await tab().locator('.opblock-summary').allTextContents()
    const has = (method: string, path: string): boolean => ops.some(o => o.replace(/\s+/g, ' ').includes(`${method}${path}`) || o.includes(`${method} ${path}`))
    for (const [m, p] of [['POST', '/jobs'], ['GET', '/jobs/{id}'], ['GET', '/jobs/{id}/tasks'], ['DELETE', '/jobs/{id}'], ['GET', '/workers'], ['POST', '/heartbeat'], ['GET', '/metrics']] as const) {
      expect(has(m, p)).toBe(true)
    }
  }, 30_000)

  test('no page asked for anything outside the master', async () => {
    await waitUntil('the pages to settle', () => true, { timeoutMs: 1000 })
    expect(outside).toEqual([])
  })
})
