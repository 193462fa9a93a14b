// A task thread's warm-up (src/roles/worker/task/warm-up.ts), run in-process over a real work dir:
// its tasks are planned as the master plans the same jobs, it succeeds and checks its own results,
// leaves nothing behind but its input, holds no budget after, two threads warming at once do not
// meet in the work dir, and a task waiting cuts it short.
import { afterAll, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobRequest } from '../../../src/api/jobs'
import { validateJob } from '../../../src/engine/dag'
import { planStages } from '../../../src/engine/plan'
import { newBudgetBuffer, newPressureBuffer, reservedBytes } from '../../../src/engine/spill/budget'
import { WARM_UP_RUNS, warmUp, warmUpSpecs } from '../../../src/roles/worker/task/warm-up'
import type { ThreadEnv } from '../../../src/roles/worker/thread-protocol'
import { WARM_UP_FILE } from '../../../src/roles/worker/warm-up-input'

const dir = mkdtempSync(join(tmpdir(), 'ms-warm-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const env = (workDir: string): ThreadEnv => ({ dataDir: join(dir, 'data'), workDir, masterUrl: 'http://127.0.0.1:9', workerId: 'w1', token: undefined, budget: newBudgetBuffer(4), pressure: newPressureBuffer(), spillAtBytes: 1 << 28, floorBytes: 1 << 20 })

test('the warm-up tasks are the stages the master plans for the same jobs', () => {
  const plan = (nodes: JobRequest['nodes']) => planStages(validateJob({ name: 'w', nodes }), 2)
  const line = { id: 'line', op: 'read_text', path: WARM_UP_FILE }
  const count = plan([line, { id: 'n', op: 'count', input: 'line' }])
  const words = plan([line, { id: 'w', op: 'words', input: 'line' }, { id: 'c', op: 'count_by_value', input: 'w' }, { id: 'o', op: 'collect', input: 'c' }])
  // The task's stage differs from the plan only where a launch fills it in (its id, its task count).
  const asLaunched = (s: object) => ({ ...s, stage_id: 0, partitions: 0 })
  const specs = warmUpSpecs(3)
  expect(asLaunched(specs.count.stage)).toEqual(asLaunched(count[0]!))
  expect(asLaunched(specs.map.stage)).toEqual(asLaunched(words[0]!))
})

test('a warm-up succeeds, releases its budget lane and leaves nothing in the work dir', async () => {
  const work = join(dir, 'work-1')
  mkdirSync(join(dir, 'data'), { recursive: true })
  mkdirSync(work, { recursive: true })
  const e = env(work)
  expect(await warmUp(e, 1)).toEqual({ tasks: 2 * WARM_UP_RUNS })
  expect(reservedBytes(e.budget)).toBe(0)
  expect(readdirSync(work)).toEqual([])
  expect(readdirSync(join(dir, 'data'))).toEqual([])
})

test('two threads warming at once, on their own lanes, both succeed', async () => {
  const work = join(dir, 'work-2')
  mkdirSync(work, { recursive: true })
  const e = env(work)
  const all = { tasks: 2 * WARM_UP_RUNS }
  expect(await Promise.all([warmUp(e, 0), warmUp(e, 1), warmUp(e, 2)])).toEqual([all, all, all])
  expect(readdirSync(work)).toEqual([])
})

test('where it cannot write its input the warm-up says what failed instead of throwing', async () => {
  const work = join(dir, 'work-3')
  writeFileSync(work, 'a file where the work dir should be')
  const outcome = await warmUp(env(work), 0)
  expect(outcome.tasks).toBe(0)
  expect(outcome.failure).toContain("cannot write the warm-up's input")
})

test('a task waiting cuts the warm-up short: at once, or after the task running then', async () => {
  const work = join(dir, 'work-4')
  mkdirSync(work, { recursive: true })
  const e = env(work)
  expect(await warmUp(e, 0, () => true)).toEqual({ tasks: 0 })
  let asked = 0
  expect(await warmUp(e, 0, () => ++asked > 1)).toEqual({ tasks: 1 })
  expect(reservedBytes(e.budget)).toBe(0)
  expect(readdirSync(work)).toEqual([])
})
