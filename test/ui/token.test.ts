// The web UI and Swagger UI of a master with a token, in Chromium (as browser.test.ts drives it):
// the pages load without the token, ask for it, keep it for the tab and send it; the data stays
// behind it; Swagger UI has an Authorize button and "Try it out" submits a job.
// Without /usr/bin/chromium (a dev machine; .ci/run installs it) the tests are skipped.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { MasterClient } from '../../src/api/client'
import { ROOT, killAll, spawnRoleProc, tempDir, waitUntil, type RoleProc } from '../support/cluster'

const CHROMIUM = '/usr/bin/chromium'
const HAVE_CHROMIUM = existsSync(CHROMIUM)
const ARTIFACTS = join(ROOT, 'test', 'artifacts')
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
const TOKEN = 'ui-token-4b1d6f0e2a9c'

let master: RoleProc | undefined
let client: MasterClient | undefined
let browser: Browser | undefined
let context: BrowserContext | undefined
let jobId = ''
const outside: string[] = []

const url = (): string => { if (master === undefined) throw new Error('the master did not start (see beforeAll)'); return master.url }
const newTab = async (): Promise<Page> => {
  if (context === undefined) throw new Error('the browser did not start (see beforeAll)')
  const p = await context.newPage()
  p.setDefaultTimeout(15_000)
  return p
}
const shot = (p: Page, name: string): Promise<Buffer> => p.screenshot({ path: join(ARTIFACTS, `token-${name}.png`), fullPage: true })

describe.skipIf(!HAVE_CHROMIUM)('a master with a token, in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    const dir = tempDir('ms-ui-token-')
    const tokenFile = join(dir, 'token')
    writeFileSync(tokenFile, `${TOKEN}\n`)
    writeFileSync(join(dir, 'in.txt'), 'a b\nc\n')
    master = await spawnRoleProc('master', ['master', '--port', '0', '--state-db', join(dir, 'm.db'), '--token-file', tokenFile])
    await spawnRoleProc('w1', ['worker', '--master', master.url, '--port', '0', '--id', 'w1', '--slots', '1', '--token-file', tokenFile,
      '--data-dir', dir, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '300ms'])
    client = new MasterClient(master.url, TOKEN)
    const c = client
    await waitUntil('the worker to join', async () => (await c.workers()).length === 1 ? true : undefined, { timeoutMs: 10_000 })
    jobId = await c.submit({ name: 'token-count', nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'n', op: 'count', input: 'l' }] })
    await c.waitDone(jobId, { timeoutMs: 20_000, pollMs: 50 })
    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    const origin = new URL(master.url).origin
    await context.route('**/*', route => {
      const u = route.request().url()
      if (u.startsWith(origin) || u.startsWith('data:')) return route.continue()
      outside.push(u)
      return route.abort()
    })
  }, 60_000)

  afterAll(async () => {
    await browser?.close().catch(() => {})
    killAll()
  })

  test('the data routes and the OpenAPI document stay behind the token', async () => {
    for (const path of ['/jobs', `/jobs/${jobId}`, '/workers', '/swagger/json', '/ui/clock', '/metrics']) {
      expect({ path, status: (await fetch(`${url()}${path}`)).status }).toEqual({ path, status: 401 })
    }
  })

  test('the UI opens, asks for the token, refuses a wrong one, then shows the jobs; the token lasts for the tab only', async () => {
    const tab = await newTab()
    await tab.goto(`${url()}/`)
    await tab.locator('#token-form').waitFor()
    await shot(tab, 'asked')
    await tab.fill('#token', 'wrong')
    await tab.click('#token-form button')
    await tab.locator('#token-form').waitFor()
    expect(await tab.locator('.card.token').textContent()).toContain('refused')
    await tab.fill('#token', TOKEN)
    await tab.click('#token-form button')
    const row = tab.locator(`#jobs-table tr[data-job="${jobId}"]`)
    await row.waitFor()
    expect(await row.locator('.badge').textContent()).toBe('SUCCEEDED')
    await shot(tab, 'jobs')
    // a reload keeps it; every API request sent it
    await tab.reload()
    await row.waitFor()
    // another tab has to be given it again: it was not written to the browser's lasting storage
    const other = await newTab()
    await other.goto(`${url()}/`)
    await other.locator('#token-form').waitFor()
    expect(await other.evaluate(() => localStorage.length)).toBe(0)
    await other.close()

    // Swagger UI in the same tab reads the document with the tab's token and has an Authorize button
    await tab.goto(`${url()}/swagger`)
    await tab.locator('.opblock').first().waitFor()
    expect(await tab.locator('button.authorize').count()).toBe(1)
    // "Try it out" on POST /jobs submits a job with the token
    const op = tab.locator('#operations-jobs-submitJob')
    await op.locator('.opblock-summary').click()
    await op.locator('button.try-out__btn').click()
    const body = JSON.stringify({ name: 'from-swagger', nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'n', op: 'count', input: 'l' }] })
    await op.locator('textarea.body-param__text').fill(body)
    await op.locator('button.execute').click()
    const code = op.locator('.live-responses-table .response .response-col_status').first()
    await code.waitFor()
    await shot(tab, 'swagger-submitted')
    expect((await code.textContent())?.trim()).toBe('201')
    const submitted = (await client!.jobs()).find(j => j.name === 'from-swagger')
    expect(submitted).toBeDefined()
    await tab.close()
  }, 60_000)

  test('Swagger UI in a fresh tab asks for the token, then shows the operations', async () => {
    const tab = await newTab()
    await tab.goto(`${url()}/swagger`)
    await tab.locator('#token-bar').waitFor({ state: 'visible' })
    await shot(tab, 'swagger-asked')
    await tab.fill('#token-input', TOKEN)
    await tab.click('#token-bar button')
    await tab.locator('#operations-jobs-submitJob').waitFor()
    expect(await tab.locator('#token-bar').isVisible()).toBe(false)
    await tab.close()
  }, 30_000)

  test('no page asked for anything outside the master', () => {
    expect(outside).toEqual([])
  })
})
