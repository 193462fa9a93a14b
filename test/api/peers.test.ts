// The worker's internal client (src/api/peers.ts) against real sockets: a peer that accepts and
// never answers (as a SIGSTOPped process does), one that stops sending mid-answer, a master that
// is down and comes back (the commit question is asked again), and a refusal (not asked again).
import { afterEach, describe, expect, test } from 'bun:test'
import { PeerClient, PeerError, type CallPolicy } from '../../src/api/peers'

const fast: CallPolicy = { connectMs: 300, idleMs: 300, retry: null }
const cleanups: (() => void)[] = []
afterEach(() => { for (const c of cleanups.splice(0)) c() })

/** A TCP server that accepts connections and never writes: what a stopped process looks like. */
function silentPeer(): number {
  const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {}, open() {} } })
  cleanups.push(() => server.stop(true))
  return server.port
}

async function failure(p: Promise<unknown>): Promise<PeerError> {
  try { await p } catch (e) { if (e instanceof PeerError) return e; throw e }
  throw new Error('no failure')
}

describe('peer client', () => {
  test('a peer that never answers: a timeout within the connect limit, naming the peer', async () => {
    const port = silentPeer()
    const peers = new PeerClient(undefined, { shuffle: fast })
    const t0 = performance.now()
    const e = await failure((async () => { for await (const _ of peers.shuffle(`127.0.0.1:${port}`, 'worker w9', { job_id: 'j', shuffle_id: 's', reduce_partition: 0, attempts: ['a'] })) { /* none */ } })())
    const took = performance.now() - t0
    expect(e.kind).toBe('timeout')
    expect(e.message).toContain('worker w9')
    expect(took).toBeGreaterThanOrEqual(290)
    expect(took).toBeLessThan(5_000)
  })

  test('a peer that stops sending mid-answer: a timeout after the idle limit, the chunks before it delivered', async () => {
    const server = Bun.serve({
      hostname: '127.0.0.1', port: 0,
      fetch: () => new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array([1, 2, 3])) /* then nothing, ever */ } })),
    })
    cleanups.push(() => server.stop(true))
    const peers = new PeerClient(undefined, { shuffle: fast })
    const got: number[] = []
    const e = await failure((async () => { for await (const c of peers.shuffle(`127.0.0.1:${server.port}`, 'worker w8', { job_id: 'j', shuffle_id: 's', reduce_partition: 0, attempts: ['a'] })) got.push(...c) })())
    expect(got).toEqual([1, 2, 3])
    expect(e.kind).toBe('timeout')
    expect(e.message).toContain('worker w8')
  })

  test('nothing listening: unreachable at once', async () => {
    const port = silentPeer()
    cleanups.splice(0).forEach(c => c())   // closed again: the port refuses
    const peers = new PeerClient(undefined, { shuffle: fast })
    const e = await failure((async () => { for await (const _ of peers.shuffle(`127.0.0.1:${port}`, 'worker w7', { job_id: 'j', shuffle_id: 's', reduce_partition: 0, attempts: ['a'] })) { /* none */ } })())
    expect(e.kind).toBe('unreachable')
  })

  test('a shuffle fetch that had no answer, or a 5xx, is asked again within the bound; the body of the answer that came is delivered whole', async () => {
    let asked = 0
    const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: async () => {
      asked++
      if (asked === 1) return new Response('busy', { status: 503 })
      if (asked === 2) { await Bun.sleep(400); return new Response('late') }   // past the connect limit
      return new Response(new Uint8Array([4, 5, 6]))
    } })
    cleanups.push(() => server.stop(true))
    const retrying: CallPolicy = { connectMs: 200, idleMs: 300, retry: { attempts: 3, totalMs: 5_000, firstDelayMs: 20, maxDelayMs: 50 } }
    const peers = new PeerClient(undefined, { shuffle: retrying })
    const got: number[] = []
    for await (const c of peers.shuffle(`127.0.0.1:${server.port}`, 'worker w6', { job_id: 'j', shuffle_id: 's', reduce_partition: 0, attempts: ['a'] })) got.push(...c)
    expect(got).toEqual([4, 5, 6])
    expect(asked).toBe(3)
    // A fourth time would be past the attempts: a peer that never answers fails, asked 3 times.
    let connections = 0
    const silent = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {}, open() { connections++ } } })
    cleanups.push(() => silent.stop(true))
    const e = await failure((async () => { for await (const _ of peers.shuffle(`127.0.0.1:${silent.port}`, 'worker w5', { job_id: 'j', shuffle_id: 's', reduce_partition: 0, attempts: ['a'] })) { /* none */ } })())
    expect(e.kind).toBe('timeout')
    expect(connections).toBe(3)
  })

  test('a shuffle fetch where nothing listens, or that was refused, is not asked again', async () => {
    const retrying: CallPolicy = { connectMs: 200, idleMs: 300, retry: { attempts: 3, totalMs: 60_000, firstDelayMs: 10_000, maxDelayMs: 10_000 } }
    const peers = new PeerClient(undefined, { shuffle: retrying })
    const port = silentPeer()
    cleanups.splice(0).forEach(c => c())
    const t0 = performance.now()
    const e = await failure((async () => { for await (const _ of peers.shuffle(`127.0.0.1:${port}`, 'worker w4', { job_id: 'j', shuffle_id: 's', reduce_partition: 0, attempts: ['a'] })) { /* none */ } })())
    expect(e.kind).toBe('unreachable')
    expect(performance.now() - t0).toBeLessThan(10_000)   // no wait of firstDelayMs before a second try
    let asked = 0
    const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => { asked++; return new Response('lost', { status: 404 }) } })
    cleanups.push(() => server.stop(true))
    const r = await failure((async () => { for await (const _ of peers.shuffle(`127.0.0.1:${server.port}`, 'worker w3', { job_id: 'j', shuffle_id: 's', reduce_partition: 0, attempts: ['a'] })) { /* none */ } })())
    expect(r.status).toBe(404)
    expect(asked).toBe(1)
  })

  test('the commit question is asked again while the master is down, and answered once it is back', async () => {
    // Take a free port, leave it closed for a while, then answer on it.
    const probe = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
    const port = probe.port!
    probe.stop(true)
    let asked = 0
    setTimeout(() => {
      const server = Bun.serve({ hostname: '127.0.0.1', port, fetch: async req => { asked++; const b = await req.json() as { attempt_id: string }; return Response.json({ commit: b.attempt_id === 'a1' }) } })
      cleanups.push(() => server.stop(true))
    }, 600)
    const peers = new PeerClient(undefined, { commit: { connectMs: 500, idleMs: 500, retry: { attempts: 50, totalMs: 10_000, firstDelayMs: 50, maxDelayMs: 200 } } })
    expect(await peers.commit(`http://127.0.0.1:${port}`, 'a1', 'w1')).toBe(true)
    expect(asked).toBe(1)
  })

  test('retries are bounded: a master that stays away makes the question fail within the total', async () => {
    const port = silentPeer()
    const peers = new PeerClient(undefined, { commit: { connectMs: 100, idleMs: 100, retry: { attempts: 100, totalMs: 800, firstDelayMs: 50, maxDelayMs: 100 } } })
    const t0 = performance.now()
    const e = await failure(peers.commit(`http://127.0.0.1:${port}`, 'a1', 'w1'))
    expect(e.transient).toBe(true)
    expect(performance.now() - t0).toBeLessThan(5_000)
  })

  test('a refusal (4xx) is not asked again', async () => {
    let asked = 0
    const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => { asked++; return new Response('no', { status: 400 }) } })
    cleanups.push(() => server.stop(true))
    const peers = new PeerClient(undefined)
    const e = await failure(peers.commit(`http://127.0.0.1:${server.port}`, 'a1', 'w1'))
    expect(e.kind).toBe('refused')
    expect(asked).toBe(1)
  })
})
