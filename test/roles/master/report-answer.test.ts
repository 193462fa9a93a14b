// Tasks handed over with the answer to a worker's report (Launcher.hold, worker taken-tasks.ts):
// what the master launches on a worker while that worker's report request waits goes in its
// answer, not in a request of its own, within a batch's bounds; the worker takes each as if pushed,
// and reports at once (as interrupted) one it cannot take, so the master runs it again.
import { describe, expect, test } from 'bun:test'
import type { TaskReport, TaskSpec } from '../../../src/api/tasks'
import { Launcher } from '../../../src/roles/master/launcher'
import type { WorkerClient } from '../../../src/roles/master/worker-client'
import { takeTasks } from '../../../src/roles/worker/taken-tasks'

const spec = (attempt: string, extra = ''): TaskSpec => ({
  job_id: 'j1', task_id: attempt.replace(/#.*$/, ''), attempt_id: attempt, attempt: 0, stage_id: 0, partition: 0, params: { pad: extra },
  stage: { stage_id: 0, root: { kind: 'source', node: { id: 'in', op: 'read_text', path: 'x' } }, nodes: [], shuffle_writes: [], sinks: [], depends_on: [], partitions: 1 },
  split: null, shuffle_inputs: [], incarnation: 'inc-1',
})

class CountingClient {
  readonly sent: string[] = []
  launch(address: string, s: string): Promise<void> { this.sent.push(`${address}:${(JSON.parse(s) as TaskSpec).attempt_id}`); return Promise.resolve() }
  launchBatch(address: string, specs: string[]) {
    for (const s of specs) this.sent.push(`${address}:${(JSON.parse(s) as TaskSpec).attempt_id}`)
    return Promise.resolve({ results: specs.map(s => ({ attempt_id: (JSON.parse(s) as TaskSpec).attempt_id, accepted: true })) })
  }
}

describe('tasks with the answer to a report', () => {
  test('launches on a held worker go in its answer; other workers, and launches after the release, get requests', async () => {
    const client = new CountingClient()
    const l = new Launcher(client as unknown as WorkerClient)
    const release = l.hold('w1')
    const outcomes = await Promise.all([l.launch('w1', spec('a')), l.launch('w2', spec('b')), l.launch('w1', spec('c'))])
    expect(outcomes.every(o => o.ok)).toBe(true)
    const answer = release()
    expect(answer.map(j => (JSON.parse(j) as TaskSpec).attempt_id)).toEqual(['a', 'c'])
    expect(JSON.parse(answer[0]!)).toEqual(spec('a'))
    expect(client.sent).toEqual(['w2:b'])
    await l.launch('w1', spec('d'))
    expect(client.sent).toEqual(['w2:b', 'w1:d'])
    expect(release()).toEqual(['a', 'c'].map(a => JSON.stringify(spec(a))))   // released once: nothing more added
  })

  test('an answer holds at most 64 tasks and 4 MiB; the rest go by request', async () => {
    const client = new CountingClient()
    const l = new Launcher(client as unknown as WorkerClient)
    let release = l.hold('w1')
    await Promise.all(Array.from({ length: 70 }, (_, i) => l.launch('w1', spec(`t${i}`))))
    expect(release()).toHaveLength(64)
    expect(client.sent.length).toBe(6)
    release = l.hold('w1')
    const big = 'x'.repeat(3 * 1024 * 1024)
    await Promise.all([l.launch('w1', spec('big1', big)), l.launch('w1', spec('big2', big))])
    expect(release().map(j => (JSON.parse(j) as TaskSpec).attempt_id)).toEqual(['big1'])
    expect(client.sent.at(-1)).toBe('w1:big2')
  })

  test('a second hold of the same worker takes over; the first release then returns only its own', async () => {
    const l = new Launcher(new CountingClient() as unknown as WorkerClient)
    const first = l.hold('w1')
    await l.launch('w1', spec('a'))
    const second = l.hold('w1')
    await l.launch('w1', spec('b'))
    expect(first().map(j => (JSON.parse(j) as TaskSpec).attempt_id)).toEqual(['a'])
    await l.launch('w1', spec('c'))
    expect(second().map(j => (JSON.parse(j) as TaskSpec).attempt_id)).toEqual(['b', 'c'])
  })

  test('the worker takes each task; one refused or malformed is reported at once as interrupted', () => {
    const taken: string[] = []
    const reports: TaskReport[] = []
    const logs: Record<string, unknown>[] = []
    takeTasks([spec('ok'), spec('ended'), { attempt_id: 'bad', incarnation: 'inc-1', job_id: 7 }, 'garbage'], {
      submit: s => { if (s.attempt_id === 'ended') return { code: 'UNKNOWN_JOB', message: 'job j1 has ended' }; taken.push(s.attempt_id); return null },
      report: r => reports.push(r), workerId: () => 'w1', log: m => logs.push(m),
    })
    expect(taken).toEqual(['ok'])
    expect(reports.map(r => [r.attempt_id, r.state, r.failure?.reason, r.incarnation, r.worker_id])).toEqual([
      ['ended', 'FAILED', 'interrupted', 'inc-1', 'w1'], ['bad', 'FAILED', 'interrupted', 'inc-1', 'w1']])
    expect(reports[0]!.failure!.message).toContain('UNKNOWN_JOB')
    expect(logs.filter(m => m.cause === 'task-malformed')).toHaveLength(2)
  })
})
