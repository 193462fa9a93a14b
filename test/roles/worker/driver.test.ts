// The worker's driver (src/roles/worker/driver.ts) with real task threads and real files, no
// master: a task over its task_timeout_ms, and one whose function calls process.exit, are each
// reported failed, and their threads are replaced and run the next task.
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NodeSpec } from '../../../src/api/jobs'
import type { TaskReport, TaskSpec } from '../../../src/api/tasks'
import { newBudgetBuffer, newPressureBuffer } from '../../../src/engine/spill/budget'
import { BlockStore } from '../../../src/roles/worker/block-store'
import { WorkerDriver } from '../../../src/roles/worker/driver'
import { FileWork } from '../../../src/roles/worker/files/work'
import { LANES_PER_SLOT } from '../../../src/roles/worker/state'
import { WARM_UP_TEXT } from '../../../src/roles/worker/warm-up-input'

const dir = mkdtempSync(join(tmpdir(), 'ms-driver-'))
writeFileSync(join(dir, 'a.txt'), 'x\ny\n')
const files = new FileWork()
afterAll(() => { files.stop(); rmSync(dir, { recursive: true, force: true }) })

function spec(n: number, fn: string, extra: Partial<TaskSpec> = {}): TaskSpec {
  const source: NodeSpec = { id: 'in', op: 'read_text', path: 'a.txt' }
  return {
    job_id: 'j1', task_id: `j1:0:${n}`, attempt_id: `j1:0:${n}:0`, attempt: 0, stage_id: 0, partition: 0, params: {},
    stage: { stage_id: 0, root: { kind: 'source', node: source }, nodes: [{ id: 'm', op: 'map', input: 'in', fn }, { id: 'n', op: 'count', input: 'm' }], shuffle_writes: [], sinks: ['n'], depends_on: [], partitions: 1 },
    split: { path: 'a.txt', start: 0, end: 4, file_size: 4 }, shuffle_inputs: [], incarnation: 'i1', ...extra,
  }
}

function driver(log: (m: Record<string, unknown>) => void = () => {}): { d: WorkerDriver; reports: TaskReport[]; ended: number[]; stop(): void } {
  const reports: TaskReport[] = []
  const ended: number[] = []
  const d = new WorkerDriver({
    slots: 1, maxMemBytes: 1 << 30, blocks: new BlockStore(), files, log, now: Date.now, workerId: () => 'w1',
    env: { dataDir: dir, workDir: join(dir, 'work'), masterUrl: 'http://127.0.0.1:9', workerId: 'w1', token: undefined, budget: newBudgetBuffer(LANES_PER_SLOT), pressure: newPressureBuffer(), spillAtBytes: 1 << 28, floorBytes: 1 << 20 },
    taskEnded: r => ended.push(r.metrics.records_in), report: r => reports.push(r),
  })
  d.post({ kind: 'incarnation-given', incarnation: 'i1' })
  const timer = setInterval(() => d.sampleMemory(), 50)
  return { d, reports, ended, stop: () => { clearInterval(timer); d.stop() } }
}

async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await Bun.sleep(20) }
}

describe('worker driver with real threads', () => {
  test('a task over its task_timeout_ms is failed, its thread replaced; the next task runs', async () => {
    const { d, reports, stop } = driver()
    try {
      const t0 = Date.now()
      expect(d.submit(spec(1, 'x => { for (;;) {} }', { task_timeout_ms: 500 }))).toBeNull()
      expect(d.submit(spec(2, 'x => x'))).toBeNull()
      await until('both reports', () => reports.length === 2)
      expect(reports[0]!.state).toBe('FAILED')
      expect(reports[0]!.failure?.message).toContain('task_timeout (500 ms)')
      expect(Date.now() - t0).toBeGreaterThanOrEqual(450)
      expect(reports[1]!.state).toBe('SUCCEEDED')
      expect(reports[1]!.sinks[0]!.records).toBe(2)
      expect(d.active).toBe(0)
    } finally { stop() }
  }, 30_000)

  test('process.exit in a function: the attempt is reported failed and the slot runs the next task', async () => {
    const { d, reports, stop } = driver()
    try {
      d.submit(spec(3, 'x => process.exit(4)'))
      d.submit(spec(4, 'x => x'))
      await until('both reports', () => reports.length === 2)
      expect(reports[0]!.state).toBe('FAILED')
      expect(reports[0]!.failure?.message).toContain('process.exit(4)')
      expect(reports[1]!.state).toBe('SUCCEEDED')
    } finally { stop() }
  }, 30_000)

  test('a new thread warms up on a file of its own and reports nothing; a task sent meanwhile runs after it, and only it is reported', async () => {
    const dataBefore = readdirSync(dir).sort()
    const logs: Record<string, unknown>[] = []
    const { d, reports, ended, stop } = driver(m => logs.push(m))
    try {
      // Sent before the new thread can have warmed up: it waits behind the warm-up in the thread.
      d.submit(spec(5, 'x => x'))
      await until('the report', () => reports.length === 1)
      const warmed = logs.findIndex(m => m.cause === 'thread-warmed' && m.thread === 1)
      expect(warmed).toBeGreaterThanOrEqual(0)
      expect(logs.filter(m => m.cause === 'warm-up-failed')).toEqual([])
      expect(warmed).toBeLessThan(logs.findIndex(m => m.cause === 'task-ended'))
      // The warm-up counts the lines of its own file (3), the task those of a.txt (2): the one
      // report, and the one task counted in the metrics, are the task's.
      expect(WARM_UP_TEXT.split('\n').length - 1).toBe(3)
      expect(reports.map(r => [r.attempt_id, r.state, r.metrics.records_in])).toEqual([['j1:0:5:0', 'SUCCEEDED', 2]])
      expect(ended).toEqual([2])
      expect(readdirSync(dir).sort()).toEqual(dataBefore)
      expect(readdirSync(join(dir, 'work'))).toEqual([])
    } finally { stop() }
  }, 30_000)
})
