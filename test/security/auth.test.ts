// The cluster's secret (CONTRACT section 7): every route of master and worker but GET /health and
// the static pages and assets of the UIs needs the token, listed from the apps' own routers so that
// a new route cannot slip by; a worker with a wrong token cannot join and exits 2 saying why;
// without a token, non-loopback binds are refused.
import { PeerClient } from '../../src/api/peers'
import { afterAll, describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import { createMaster } from '../../src/roles/master/index'
import { workerApp, type WorkerContext } from '../../src/roles/worker/app'
import { killAll, runCli, spawnRoleProc, tempDir, waitUntil } from '../support/cluster'

afterAll(() => killAll())

const TOKEN = 'test-token-0123456789abcdef'

type Routable = { routes: { method: string; path: string }[]; handle(r: Request): Promise<Response> }

/** Every route of an app, as a request with placeholder path parameters. */
function requestsFor(app: Routable, headers: Record<string, string>): { name: string; request: Request }[] {
  return app.routes.map(r => {
    const path = r.path.replace(/:[A-Za-z_]+/g, 'x').replace(/\*$/, 'x')
    const method = r.method === 'ALL' ? 'GET' : r.method
    const body = method === 'GET' || method === 'HEAD' ? undefined : '{}'
    return {
      name: `${r.method} ${r.path}`,
      request: new Request(`http://localhost${path}`, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body } : {}) }),
    }
  })
}

// CONTRACT section 7: what a browser loads before it can send the token. None of it holds data:
// pages, scripts, stylesheets, the job schema. /swagger/json and /ui/clock are not among them.
const PUBLIC = new Set(['GET /health', 'GET /', 'GET /ui', 'GET /ui/app.js', 'GET /ui/style.css', 'GET /favicon.ico',
  'GET /swagger', 'GET /swagger/assets/swagger-ui-bundle.js', 'GET /swagger/assets/swagger-ui.css', 'GET /job.schema.json'])

async function expectAllRefused(app: Routable, headers: Record<string, string>): Promise<void> {
  const reqs = requestsFor(app, headers)
  expect(reqs.length).toBeGreaterThan(5)
  for (const { name, request } of reqs) {
    const res = await app.handle(request)
    if (PUBLIC.has(name)) {
      expect({ name, ok: res.ok }).toEqual({ name, ok: true })
      if (name !== 'GET /health' && name !== 'GET /job.schema.json') expect(res.headers.get('content-type') ?? '', name).not.toContain('json')
      continue
    }
    expect({ name, status: res.status }).toEqual({ name, status: 401 })
    expect((await res.json() as { error: { code: string } }).error.code).toBe('UNAUTHORIZED')
  }
}

describe('with a token, every route but GET /health and the UIs\' static files needs it', () => {
  const dir = tempDir('ms-auth-')
  const master = createMaster({ host: '127.0.0.1', port: 0, stateDb: join(dir, 'm.db'), heartbeatTimeoutMs: 10_000, token: TOKEN })
  afterAll(() => master.stop())
  const unused = (): never => { throw new Error('a refused request reached a handler') }
  const worker = workerApp({ tasks: unused, blocks: unused, files: unused, dataDir: dir, own: [], peers: new PeerClient(undefined) } satisfies WorkerContext, TOKEN)

  test('master: no token → 401 on every route', () => expectAllRefused(master.app as unknown as Routable, {}))
  test('master: a wrong token → 401 on every route', () => expectAllRefused(master.app as unknown as Routable, { authorization: `Bearer ${TOKEN}x` }))
  test('master: the wrong scheme → 401', () => expectAllRefused(master.app as unknown as Routable, { authorization: TOKEN }))
  test('worker: no token or a wrong one → 401 on every route', async () => {
    await expectAllRefused(worker as unknown as Routable, {})
    await expectAllRefused(worker as unknown as Routable, { authorization: 'Bearer nope' })
  })
  test('an unknown path without the token is a 401, not a 404; with it, a 404', async () => {
    const app = master.app as unknown as Routable
    expect((await app.handle(new Request('http://localhost/no/such/route'))).status).toBe(401)
    expect((await app.handle(new Request('http://localhost/no/such/route', { headers: { authorization: `Bearer ${TOKEN}` } }))).status).toBe(404)
  })
  test('with the token, the routes answer', async () => {
    const app = master.app as unknown as Routable
    const res = await app.handle(new Request('http://localhost/jobs', { headers: { authorization: `Bearer ${TOKEN}` } }))
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual([])
  })
})

describe('real processes with a token', () => {
  test('a worker with the right token joins and runs a job; one with a wrong token cannot join', async () => {
    const dir = tempDir('ms-auth-cluster-')
    const tokenFile = join(dir, 'token')
    writeFileSync(tokenFile, `${TOKEN}\n`)
    const wrongFile = join(dir, 'wrong')
    writeFileSync(wrongFile, 'not-the-token\n')
    writeFileSync(join(dir, 'in.txt'), 'a b\nc\n')
    const master = await spawnRoleProc('master', ['master', '--port', '0', '--state-db', join(dir, 'm.db'), '--token-file', tokenFile])
    const common = ['--port', '0', '--data-dir', dir, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '200ms', '--master', master.url]
    await spawnRoleProc('good', ['worker', '--id', 'good', '--token-file', tokenFile, ...common])
    const bad = await spawnRoleProc('bad', ['worker', '--id', 'bad', '--token-file', wrongFile, ...common])
    const client = new MasterClient(master.url, TOKEN)
    await waitUntil('the good worker to join', async () => (await client.workers()).some(w => w.worker_id === 'good') ? true : undefined, { timeoutMs: 10_000 })
    // The bad worker is refused at its first beat: it cannot ever join, so it says why and exits 2
    // rather than idling for ever.
    const badExit = await Promise.race([bad.proc.exited, Bun.sleep(10_000).then(() => 'still running')])
    expect(badExit).toBe(2)
    expect(bad.log()).toContain('refused this worker\'s token')
    expect(bad.log()).toContain('--token-file')
    expect((await client.workers()).map(w => w.worker_id)).toEqual(['good'])
    // so does one with no token at all
    const none = await runCli(['worker', '--id', 'none', ...common], { env: { MINISPARK_TOKEN: '' }, timeoutMs: 15_000 })
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('refused')
    // Client commands take --token-file as the roles do.
    const viaFile = await runCli(['workers', '--master', master.url, '--token-file', tokenFile], { env: { MINISPARK_TOKEN: '' } })
    expect(viaFile.code).toBe(0)
    expect(viaFile.stdout).toContain('good')
    // The CLI reads MINISPARK_TOKEN; without it, it is refused.
    const ok = await runCli(['workers', '--master', master.url], { env: { MINISPARK_TOKEN: TOKEN } })
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain('good')
    const refused = await runCli(['workers', '--master', master.url], { env: { MINISPARK_TOKEN: '' } })
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('token')
    const id = await client.submit({ nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'n', op: 'count', input: 'l' }] })
    expect((await client.waitDone(id, { timeoutMs: 30_000 })).state).toBe('SUCCEEDED')
    expect(await client.result(id)).toEqual({ sinks: { n: { op: 'count', value: 2 } } })
  }, 60_000)

  test('without a token, master and worker refuse a non-loopback address (exit 2, naming the fix)', async () => {
    const dir = tempDir('ms-bind-')
    const m = await runCli(['master', '--host', '0.0.0.0', '--port', '0', '--state-db', join(dir, 'm.db')], { env: { MINISPARK_TOKEN: '' }, timeoutMs: 10_000 })
    expect(m.code).toBe(2)
    expect(m.stderr).toContain('--token-file')
    expect(m.stderr).toContain('--insecure')
    const w = await runCli(['worker', '--master', 'http://127.0.0.1:1', '--host', '0.0.0.0', '--port', '0'], { env: { MINISPARK_TOKEN: '' }, timeoutMs: 10_000 })
    expect(w.code).toBe(2)
    const empty = join(dir, 'empty')
    writeFileSync(empty, '\n')
    const e = await runCli(['master', '--port', '0', '--state-db', join(dir, 'm2.db'), '--token-file', empty], { timeoutMs: 10_000 })
    expect(e.code).toBe(2)
    expect(e.stderr).toContain('empty')
  }, 30_000)
})
