// The web UI pages the history in a real browser (Debian's Chromium, playwright-core) against a
// local cluster: the jobs list and a job's task list fetch one page at a time (every request the
// page makes for them carries a `limit`), move with Older/Newer and Prev/Next, and a finished
// job's attempts are not fetched again each second. Skipped without /usr/bin/chromium.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { killAll, startCluster, tempDir, type Cluster } from '../support/cluster'

const CHROMIUM = '/usr/bin/chromium'
const HAVE_CHROMIUM = existsSync(CHROMIUM)
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

let c: Cluster | undefined
let browser: Browser | undefined
let page: Page | undefined
const requests: string[] = []
const ids: string[] = []
let bigJob = ''

const cluster = (): Cluster => { if (c === undefined) throw new Error('the cluster did not start (see beforeAll)'); return c }
const tab = (): Page => { if (page === undefined) throw new Error('the browser did not start (see beforeAll)'); return page }
/** Requests the page made to a list route since `from`. */
const listRequests = (from: number, re: RegExp): URL[] => requests.slice(from).map(u => new URL(u)).filter(u => re.test(u.pathname))

describe.skipIf(!HAVE_CHROMIUM)('the web UI pages the history', () => {
  beforeAll(async () => {
    const data = tempDir('ms-ui-history-')
    mkdirSync(join(data, 'in'))
    writeFileSync(join(data, 'in/a.txt'), 'one\n')
    // 150 lines of 20 bytes, cut at every line: 150 map tasks, 150 attempts.
    writeFileSync(join(data, 'in/lines.txt'), Array.from({ length: 150 }, (_, i) => `line ${String(i).padStart(14, '0')}`).join('\n') + '\n')
    c = await startCluster({ workers: 1, slots: 2, dataDir: data, heartbeatTimeout: '3s', heartbeatInterval: '300ms' })
    for (let i = 0; i < 54; i++) {
      ids.push(await c.client.submit({ name: `tiny-${i}`, nodes: [{ id: 'l', op: 'read_text', path: 'in/a.txt' }, { id: 'n', op: 'count', input: 'l' }] }))
    }
    bigJob = await c.client.submit({ name: 'many-tasks', split_bytes: 20, nodes: [{ id: 'l', op: 'read_text', path: 'in/lines.txt' }, { id: 'n', op: 'count', input: 'l' }] })
    ids.push(bigJob)
    for (const id of ids) {
      const s = await c.client.waitDone(id, { timeoutMs: 30_000, pollMs: 50 })
      if (s.state !== 'SUCCEEDED') throw new Error(`${id} ${s.state}`)
    }
    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    page = await context.newPage()
    page.setDefaultTimeout(15_000)
    page.on('request', r => { requests.push(r.url()) })
  }, 90_000)

  afterAll(async () => {
    await browser?.close().catch(() => {})
    await c?.stop()
    killAll()
  })

  test('the jobs list shows the newest 50 and moves to older and back, one page per request', async () => {
    const from = requests.length
    await tab().goto(`${cluster().url}/`)
    const rows = tab().locator('#jobs-table tbody tr[data-job]')
    await tab().locator(`#jobs-table tr[data-job="${bigJob}"]`).waitFor()
    expect(await rows.count()).toBe(50)
    expect(await tab().locator('#jobs-summary').textContent()).toContain('55 jobs')
    const newestFirst = [...ids].reverse()
    expect(await rows.evaluateAll(rs => rs.map(r => r.getAttribute('data-job')))).toEqual(newestFirst.slice(0, 50))
    await tab().click('#jobs-older')
    await tab().locator(`#jobs-table tr[data-job="${ids[0]}"]`).waitFor()
    expect(await rows.evaluateAll(rs => rs.map(r => r.getAttribute('data-job')))).toEqual(newestFirst.slice(50))
    expect(await tab().locator('#jobs-summary').textContent()).toContain('51–55')
    expect(await tab().locator('#jobs-older').isDisabled()).toBe(true)
    await tab().click('#jobs-newer')
    await tab().locator(`#jobs-table tr[data-job="${bigJob}"]`).waitFor()
    expect(await rows.count()).toBe(50)
    const asked = listRequests(from, /^\/jobs$/)
    expect(asked.length).toBeGreaterThan(2)
    for (const u of asked) expect(Number(u.searchParams.get('limit'))).toBe(50)
  }, 30_000)

  test('a job\'s task list is paged by the master, and a finished job\'s attempts are not read again', async () => {
    const from = requests.length
    await tab().goto(`${cluster().url}/#/jobs/${bigJob}`)
    const rows = tab().locator('#tasks-table tbody tr[data-task]')
    await rows.first().waitFor()
    expect(await rows.count()).toBe(100)
    expect(await tab().locator('#task-range').textContent()).toBe('1–100 of 150 attempts')
    await tab().click('#task-next')
    await tab().locator('#task-range', { hasText: '101–150 of 150 attempts' }).waitFor()
    expect(await rows.count()).toBe(50)
    await tab().click('#task-prev')
    await tab().locator('#task-range', { hasText: '1–100 of 150 attempts' }).waitFor()
    // The timeline draws every attempt (150 of at most 1 000 read).
    expect(await tab().locator('#timeline rect.a').count()).toBe(150)
    const settled = requests.length
    await Bun.sleep(2_500)
    // The page still polls the job's status, but the finished job's attempts are not read again.
    expect(listRequests(settled, /^\/jobs\/[^/]+$/).length).toBeGreaterThan(0)
    expect(listRequests(settled, /\/tasks$/)).toEqual([])
    const asked = listRequests(from, /\/tasks$/)
    expect(asked.length).toBeGreaterThan(0)
    for (const u of asked) expect(Number(u.searchParams.get('limit'))).toBeGreaterThan(0)
  }, 30_000)
})
