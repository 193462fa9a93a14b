// DNS rebinding (CONTRACT section 7): without a token a role listens on loopback only, and a web
// page whose name was rebound to 127.0.0.1 must not reach it. So it answers only requests whose
// Host is a loopback name or address and whose Origin, if any, is loopback too; `local` and the
// SDK's local() give their own cluster a random token that no web page can know.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { local } from '../../src/sdk/session'
import { killAll, startCluster, tempDir, type Cluster } from '../support/cluster'

let c: Cluster
beforeAll(async () => {
  const dataDir = tempDir('ms-rebind-data-')
  writeFileSync(join(dataDir, 'in.txt'), 'a\nb\n')
  c = await startCluster({ workers: 1, dataDir })
}, 60_000)
afterAll(async () => { await c?.stop(); killAll() })

/** This process's children of a local() cluster (their work dir or state db is in its temp dir). */
function childPids(): number[] {
  return readdirSync('/proc').filter(n => /^\d+$/.test(n)).filter(n => {
    try {
      return Number(readFileSync(`/proc/${n}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === process.pid &&
        readFileSync(`/proc/${n}/cmdline`, 'utf8').includes('minispark-local-')
    } catch { return false }
  }).map(Number)
}

async function get(base: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const res = await fetch(base + path, { headers })
  return { status: res.status, body: await res.json() as { error?: { code: string; message: string } } }
}

describe('without a token, only loopback Host and Origin values are answered', () => {
  const port = (url: string): string => new URL(url).port
  test('a foreign Host gets a JSON 403 on master and worker, GET /health included', async () => {
    for (const base of [c.url, c.workers[0]!.url]) {
      for (const host of [`evil.example:${port(base)}`, 'evil.example', `127.0.0.1.evil.example:${port(base)}`, `localhost.evil.example`, `[::2]:${port(base)}`, `0.0.0.0:${port(base)}`]) {
        for (const path of ['/workers', '/health', '/swagger/json']) {
          const r = await get(base, path, { host })
          expect({ host, path, status: r.status }).toEqual({ host, path, status: 403 })
          expect(r.body.error?.code).toBe('FORBIDDEN')
          expect(r.body.error?.message).toContain('Host')
        }
      }
    }
  })
  test('a foreign Origin gets a JSON 403, even with a loopback Host', async () => {
    for (const origin of ['http://evil.example', `http://evil.example:${port(c.url)}`, 'null', 'https://127.0.0.1.evil.example']) {
      const r = await get(c.url, '/workers', { host: `127.0.0.1:${port(c.url)}`, origin })
      expect({ origin, status: r.status }).toEqual({ origin, status: 403 })
      expect(r.body.error?.code).toBe('FORBIDDEN')
    }
  })
  test('loopback Hosts and Origins, with any port, are answered', async () => {
    for (const host of [`127.0.0.1:${port(c.url)}`, `localhost:${port(c.url)}`, 'localhost', `127.1.2.3:9`, `[::1]:${port(c.url)}`, 'LOCALHOST:1']) {
      for (const origin of [undefined, `http://localhost:${port(c.url)}`, 'http://127.0.0.1:3000', 'http://[::1]:80']) {
        const r = await get(c.url, '/workers', { host, ...(origin === undefined ? {} : { origin }) })
        expect({ host, origin, status: r.status }).toEqual({ host, origin, status: 200 })
      }
    }
  })
  test('the cluster still runs jobs (workers and master talk by loopback addresses)', async () => {
    const id = await c.client.submit({ nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'n', op: 'count', input: 'l' }] })
    expect((await c.client.waitDone(id, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
    expect((await c.client.result(id)).sinks.n).toEqual({ op: 'count', value: 2 })
  })
})

describe('local() gives its own cluster a random token, through the environment', () => {
  test('the master and workers refuse requests without it; it is not on any command line', async () => {
    const dataDir = tempDir('ms-rebind-local-')
    writeFileSync(join(dataDir, 'in.txt'), 'x\ny\nz\n')
    const saved = process.env.MINISPARK_TOKEN
    delete process.env.MINISPARK_TOKEN
    const ms = await local({ workers: 1, dataDir })
    try {
      expect(await ms.textFile('in.txt').count()).toBe(3)
      const workers = await ms.client.workers()
      for (const base of [ms.url, `http://${workers[0]!.address}`]) {
        const r = await get(base, '/workers', {})
        expect({ base, status: r.status }).toEqual({ base, status: 401 })
      }
      const pids = childPids()
      expect(pids.length).toBe(2)
      for (const pid of pids) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
        const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
        const token = env.find(e => e.startsWith('MINISPARK_TOKEN='))?.slice('MINISPARK_TOKEN='.length) ?? ''
        expect(token.length).toBeGreaterThanOrEqual(32)
        expect(argv.some(a => a.includes(token))).toBe(false)
      }
    } finally {
      await ms.stop()
      if (saved !== undefined) process.env.MINISPARK_TOKEN = saved
    }
  }, 30_000)
})
