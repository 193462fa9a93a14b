// One task attempt run in-process (src/roles/worker/task/run.ts) over real files: the split's file
// must be as planned (INPUT_CHANGED otherwise, not retried), a collect is sized in UTF-8 bytes as
// the report body is, and an attempt's scratch folder goes when it ends.
import { afterAll, describe, expect, test } from 'bun:test'
import { appendFileSync, existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NodeSpec } from '../../../src/api/jobs'
import type { TaskSpec } from '../../../src/api/tasks'
import { newBudgetBuffer, newPressureBuffer, reservedBytes } from '../../../src/engine/spill/budget'
import { attemptDir } from '../../../src/roles/worker/layout'
import { COLLECT_TASK_LIMIT_BYTES } from '../../../src/roles/worker/task/sinks'
import { runTask } from '../../../src/roles/worker/task/run'
import type { ThreadEnv } from '../../../src/roles/worker/thread-protocol'

const dir = mkdtempSync(join(tmpdir(), 'ms-task-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const env = (): ThreadEnv => ({ dataDir: dir, workDir: join(dir, 'work'), masterUrl: 'http://127.0.0.1:9', workerId: 'w7', token: undefined, budget: newBudgetBuffer(2), pressure: newPressureBuffer(), spillAtBytes: 1 << 28, floorBytes: 1 << 20 })

function collectSpec(file: string, size: number, n = 0): TaskSpec {
  const source: NodeSpec = { id: 'in', op: 'read_text', path: file }
  return {
    job_id: 'j1', task_id: `j1:0:${n}`, attempt_id: `j1:0:${n}:0`, attempt: 0, stage_id: 0, partition: 0, params: {},
    stage: { stage_id: 0, root: { kind: 'source', node: source }, nodes: [{ id: 'out', op: 'collect', input: 'in' }], shuffle_writes: [], sinks: ['out'], depends_on: [], partitions: 1 },
    split: { path: file, start: 0, end: size, file_size: size }, shuffle_inputs: [], incarnation: 'i',
  }
}

describe('a task attempt', () => {
  test('reads its split when the file is as planned', async () => {
    writeFileSync(join(dir, 'a.txt'), 'x\ny\n')
    const r = await runTask(collectSpec('a.txt', 4), env(), 0)
    expect(r.state).toBe('SUCCEEDED')
    expect(r.sinks[0]?.values).toEqual(['x', 'y'])
  })

  test('a file gone, grown or cut since planning: INPUT_CHANGED, fatal, naming the file and the worker', async () => {
    const e = env()
    const gone = await runTask(collectSpec('missing.txt', 4), e, 0)
    expect(gone.state).toBe('FAILED')
    expect(gone.failure?.reason).toBe('fatal')
    expect(gone.failure?.message).toContain('INPUT_CHANGED')
    expect(gone.failure?.message).toContain('"missing.txt"')
    expect(gone.failure?.message).toContain('w7')
    writeFileSync(join(dir, 'b.txt'), 'x\ny\n')
    appendFileSync(join(dir, 'b.txt'), 'z\n')
    const grown = await runTask(collectSpec('b.txt', 4), e, 0)
    expect(grown.failure?.message).toContain('INPUT_CHANGED')
    writeFileSync(join(dir, 'c.txt'), 'x\ny\n')
    truncateSync(join(dir, 'c.txt'), 2)
    const cut = await runTask(collectSpec('c.txt', 4), e, 0)
    expect(cut.failure?.message).toContain('INPUT_CHANGED')
    // A folder where the file was is no file either.
    const asDir = await runTask(collectSpec('.', 4), e, 0)
    expect(asDir.failure?.message).toContain('INPUT_CHANGED')
    expect(reservedBytes(e.budget)).toBe(0)
  })

  test('a collect is limited in UTF-8 bytes: 6 M three-byte characters (18 MB, 6 M chars) are refused', async () => {
    const chars = Math.ceil(COLLECT_TASK_LIMIT_BYTES / 3) + 1024
    expect(chars).toBeLessThan(COLLECT_TASK_LIMIT_BYTES)   // under the limit if counted in chars
    const line = '€'.repeat(chars)
    writeFileSync(join(dir, 'euro.txt'), `${line}\n`)
    const size = Buffer.byteLength(line) + 1
    const r = await runTask(collectSpec('euro.txt', size), env(), 0)
    expect(r.state).toBe('FAILED')
    expect(r.failure?.reason).toBe('fatal')
    expect(r.failure?.message).toContain('collect "out"')
  })

  test('the attempt\'s scratch folder is gone when it ends', async () => {
    const e = env()
    writeFileSync(join(dir, 'd.txt'), 'x\n')
    const scratch = attemptDir(e.workDir, 'j1', 'j1:0:5:0')
    const r = await runTask(collectSpec('d.txt', 2, 5), e, 1)
    expect(r.state).toBe('SUCCEEDED')
    expect(existsSync(scratch)).toBe(false)
  })
})
