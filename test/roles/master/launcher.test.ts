// The launcher (src/roles/master/launcher.ts) against a fake worker client: one request in flight
// per worker, what waits goes in one batch, and a worker that does not answer fails what waits.
import { describe, expect, test } from 'bun:test'
import type { TaskBatchAnswer, TaskSpec } from '../../../src/api/tasks'
import { Launcher, type LaunchOutcome } from '../../../src/roles/master/launcher'
import { HttpError, type WorkerClient } from '../../../src/roles/master/worker-client'

const spec = (attempt: string): TaskSpec => ({ attempt_id: attempt } as TaskSpec)

/** Calls wait until the test settles them, in order. */
class FakeClient {
  readonly calls: { address: string; attempts: string[]; settle: (e?: Error, answer?: TaskBatchAnswer) => void }[] = []
  launch(address: string, s: TaskSpec | string): Promise<void> { return this.call(address, [parse(s)]).then(() => undefined) }
  launchBatch(address: string, specs: (TaskSpec | string)[]): Promise<TaskBatchAnswer> { return this.call(address, specs.map(parse)) }
  private call(address: string, specs: TaskSpec[]): Promise<TaskBatchAnswer> {
    return new Promise((resolve, reject) => {
      this.calls.push({
        address, attempts: specs.map(s => s.attempt_id),
        settle: (e, answer) => e ? reject(e) : resolve(answer ?? { results: specs.map(s => ({ attempt_id: s.attempt_id, accepted: true })) }),
      })
    })
  }
}

const parse = (s: TaskSpec | string): TaskSpec => typeof s === 'string' ? JSON.parse(s) as TaskSpec : s

const tick = () => new Promise(r => setTimeout(r, 0))

describe('launcher', () => {
  test('one request in flight per worker; what came meanwhile goes in one batch; other workers are not held up', async () => {
    const client = new FakeClient()
    const l = new Launcher(client as unknown as WorkerClient)
    const outcomes: LaunchOutcome[] = []
    for (const [addr, a] of [['w1', 'a'], ['w1', 'b'], ['w2', 'c'], ['w1', 'd']] as const) void l.launch(addr, spec(a)).then(o => outcomes.push(o))
    expect(client.calls.map(c => `${c.address}:${c.attempts.join('+')}`)).toEqual(['w1:a', 'w2:c'])
    client.calls[0]!.settle()
    await tick()
    expect(client.calls.map(c => `${c.address}:${c.attempts.join('+')}`)).toEqual(['w1:a', 'w2:c', 'w1:b+d'])
    client.calls[2]!.settle(undefined, { results: [{ attempt_id: 'b', accepted: true }, { attempt_id: 'd', accepted: false, error: { code: 'STALE_INCARNATION', message: 'stale' } }] })
    client.calls[1]!.settle()
    await tick()
    // A worker that is another incarnation than the task was for: that incarnation is gone.
    expect(outcomes).toContainEqual({ ok: false, message: 'stale', unreachable: true })
    expect(outcomes.filter(o => o.ok)).toHaveLength(3)
  })

  test('a refused launch fails what waits for the same worker at once; an error answer does not', async () => {
    const client = new FakeClient()
    const l = new Launcher(client as unknown as WorkerClient)
    const got = new Map<string, LaunchOutcome>()
    for (const a of ['a', 'b']) void l.launch('w1', spec(a)).then(o => got.set(a, o))
    client.calls[0]!.settle(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))
    await tick()
    expect(got.get('a')).toEqual({ ok: false, message: 'refused', unreachable: true })
    expect(got.get('b')).toMatchObject({ ok: false, unreachable: false })
    expect(client.calls).toHaveLength(1)

    for (const a of ['c', 'd']) void l.launch('w1', spec(a)).then(o => got.set(a, o))
    client.calls[1]!.settle(new HttpError(400, 'bad spec'))
    await tick()
    expect(got.get('c')).toEqual({ ok: false, message: 'bad spec', unreachable: false, permanent: true })
    expect(client.calls[2]?.attempts).toEqual(['d'])
  })

  test('a batch stays under the byte bound: a large spec goes alone, and a 413 for it is permanent', async () => {
    const client = new FakeClient()
    const l = new Launcher(client as unknown as WorkerClient)
    const got = new Map<string, LaunchOutcome>()
    const big = (a: string): TaskSpec => ({ attempt_id: a, params: { pad: 'x'.repeat(3 * 1024 * 1024) } } as unknown as TaskSpec)
    void l.launch('w1', spec('first')).then(o => got.set('first', o))
    for (const a of ['b1', 'b2', 'b3']) void l.launch('w1', big(a)).then(o => got.set(a, o))
    void l.launch('w1', spec('small')).then(o => got.set('small', o))
    client.calls[0]!.settle()
    await tick()
    // 3 MiB each against a 4 MiB bound: one per request.
    expect(client.calls[1]?.attempts).toEqual(['b1'])
    client.calls[1]!.settle(new HttpError(413, 'too large'))
    await tick()
    expect(got.get('b1')).toEqual({ ok: false, message: 'too large', unreachable: false, permanent: true })
    expect(client.calls[2]?.attempts).toEqual(['b2'])
    client.calls[2]!.settle()
    await tick()
    expect(client.calls[3]?.attempts).toEqual(['b3', 'small'])
    // A worker that says it is another incarnation (409): that incarnation is gone, not the spec's fault.
    client.calls[3]!.settle(new HttpError(409, 'stale'))
    await tick()
    expect(got.get('small')).toEqual({ ok: false, message: 'stale', unreachable: true })
  })
})
