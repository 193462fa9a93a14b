// The data service's file side on real files and a real HTTP peer: a committed part is served by
// its path and pulled onto another disk whole (or not at all); nothing but an output's part file is
// ever served or written; and the finalize route's settle removes strays and writes this disk's
// _SUCCESS, on a shared folder as on a disk of its own.
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Elysia from 'elysia'
import { PeerClient } from '../../../src/api/peers'
import { workerApp } from '../../../src/roles/worker/app'
import { FileWork } from '../../../src/roles/worker/files/work'
import { partPath, pullPart } from '../../../src/roles/worker/data-service'
import { diskIdOf } from '../../../src/roles/worker/disk-id'

const root = mkdtempSync(join(tmpdir(), 'ms-data-service-'))
const diskA = join(root, 'a')
const diskB = join(root, 'b')
const work = join(root, 'a', 'work')
for (const d of [diskA, diskB, work]) mkdirSync(d, { recursive: true })
const files = new FileWork()
const unused = (): never => { throw new Error('not used here') }
const own = [{ path: work, what: "the worker's work dir" }]
const app = workerApp({ tasks: unused, blocks: unused, files: () => files, dataDir: diskA, own, peers: new PeerClient(undefined) }, undefined) as unknown as Elysia
app.listen({ hostname: '127.0.0.1', port: 0 })
const address = `127.0.0.1:${app.server!.port}`
afterAll(() => { app.stop(); files.stop(); rmSync(root, { recursive: true, force: true }) })

const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'x').toString() + '\nend\n'
mkdirSync(join(diskA, 'out/wc'), { recursive: true })
writeFileSync(join(diskA, 'out/wc/part-00003'), big)
writeFileSync(join(diskA, 'out/wc/notes.txt'), 'not a part')
writeFileSync(join(work, 'part-00000'), 'work dir')

describe('serving and pulling parts', () => {
  test('a part pulled from a peer is the same bytes, put in place by a rename (no partial file left)', async () => {
    const bytes = await pullPart(diskB, 'out/wc/part-00003', address, new PeerClient(undefined), [])
    expect(bytes).toBe(Buffer.byteLength(big))
    expect(readFileSync(join(diskB, 'out/wc/part-00003'), 'utf8')).toBe(big)
    expect(readdirSync(join(diskB, 'out/wc'))).toEqual(['part-00003'])
  })

  test('a part the peer does not hold fails the pull and leaves nothing', async () => {
    await expect(pullPart(diskB, 'out/wc/part-00009', address, new PeerClient(undefined), [])).rejects.toThrow('404')
    expect(existsSync(join(diskB, 'out/wc/part-00009'))).toBe(false)
    expect(readdirSync(join(diskB, 'out/wc')).filter(n => n.startsWith('.replica'))).toEqual([])
  })

  test('only part files of an output folder are served or written: not another file, not outside, not the work dir', async () => {
    for (const bad of ['out/wc/notes.txt', '../b/out/wc/part-00003', '/etc/part-00001', 'part-00000', 'work/part-00000']) {
      const res = await fetch(`http://${address}/shuffle_data/output/${bad}`)
      expect({ bad, ok: res.ok }).toEqual({ bad, ok: false })
    }
    expect(() => partPath(diskA, 'work/part-00000', own)).toThrow()
    expect(() => partPath(diskA, 'out/../../x/part-00001', own)).toThrow()
  })
})

describe('settling an output on a disk', () => {
  const finalize = (body: unknown): Promise<Response> => app.handle(new Request('http://127.0.0.1/outputs/finalize', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  }))

  test('strays go, the parts that count stay, _SUCCESS names this disk\'s parts and the total', async () => {
    mkdirSync(join(diskA, 'out/s'), { recursive: true })
    for (const p of ['part-00000', 'part-00001', 'part-00002']) writeFileSync(join(diskA, 'out/s', p), `${p}\n`)
    const res = await finalize({ job_id: 'j7', paths: [], settle: [{ path: 'out/s', dir: 'out/s', keep: ['part-00000', 'part-00002'], success: { parts: [0, 2], total: 4 } }] })
    expect(res.status).toBe(200)
    expect(readdirSync(join(diskA, 'out/s')).sort()).toEqual(['_SUCCESS', 'part-00000', 'part-00002'])
    expect(JSON.parse(readFileSync(join(diskA, 'out/s/_SUCCESS'), 'utf8'))).toEqual({ job_id: 'j7', parts: [0, 2], total: 4 })
  })

  test('a disk that holds no part of it loses its strays and the folders they leave empty, and gets no _SUCCESS', async () => {
    // the job's attempts' folders (a worker lost mid-write), and another job's
    mkdirSync(join(diskA, 'out/t/_temporary/j8_3a1_3a0_23', 'x'), { recursive: true })
    mkdirSync(join(diskA, 'out/u/_temporary/j9_3a1_3a0_23'), { recursive: true })
    writeFileSync(join(diskA, 'out/t/part-00001'), 'stray\n')
    expect((await finalize({ job_id: 'j8', paths: [], settle: [{ path: 'out/t', dir: 'out/t', keep: [] }, { path: 'out/u', dir: 'out/u', keep: [], job_id: 'j1' }] })).status).toBe(200)
    expect(existsSync(join(diskA, 'out/t'))).toBe(false)
    expect(existsSync(join(diskA, 'out/u/_temporary/j9_3a1_3a0_23'))).toBe(true)
  })
})

describe('disk ids', () => {
  test('workers on one folder share its id; another folder has its own; the id survives a restart', () => {
    const a1 = diskIdOf(diskA)
    expect(diskIdOf(diskA)).toBe(a1)
    expect(diskIdOf(diskB)).not.toBe(a1)
    expect(readFileSync(join(diskA, '.minispark-disk'), 'utf8').trim()).toBe(a1)
  })
})
