// "Results do not lie": seeded random jobs on a real 3-worker cluster, each checked against the
// sequential interpreter of test/support/random-dag.ts. The jobs mix what a careful user and bad
// luck bring: functions that mutate their records, sinks over outputs that exist (with and without
// overwrite), sinks that collide with each other or with the inputs, and inputs that change or
// vanish between submit and run. A job that SUCCEEDED must equal the interpreter; a job that was
// refused or FAILED must say why, and must be one that may be refused or fail. A failing seed is
// printed with its job, so it reproduces. MINISPARK_SEEDS=N runs N seeds (default 200).
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest, JobStatus, NodeSpec } from '../../src/api/jobs'
import { killAll, startCluster, tempDir, type Cluster } from '../support/cluster'
import { generate, problemsOf, writeSources, type Case, type Pair } from '../support/random-dag'

const SEEDS = Number(process.env.MINISPARK_SEEDS ?? 200)
const FIRST_SEED = Number(process.env.MINISPARK_FIRST_SEED ?? 1000)

let c: Cluster | undefined
let data = ''
let sources: Record<string, Pair[]> = {}

beforeAll(async () => {
  data = tempDir('ms-lies-')
  sources = writeSources(data, 'prop')
  c = await startCluster({ workers: 3, slots: 1, dataDir: data })
}, 60_000)

afterAll(async () => {
  await c?.stop()
  killAll()
})

/** What a seed adds to its random DAG, and so which outcomes are allowed. */
type Twist =
  | 'none'
  /** the output exists, with a stale part and _SUCCESS, and the sink does not say overwrite */
  | 'output-exists'
  /** the same, with overwrite: the new output must hold nothing of the old one */
  | 'overwrite'
  /** a second sink writes the first one's path, or a folder inside it */
  | 'sinks-collide'
  /** a sink writes inside the folder the job reads */
  | 'output-in-input'
  /** the job reads its own copy of the sources, and a file of it is truncated or removed once
   *  the job is accepted */
  | 'input-changes'

const TWISTS: readonly Twist[] = ['none', 'none', 'none', 'none', 'output-exists', 'overwrite', 'sinks-collide', 'output-in-input', 'input-changes', 'none']

type Trial = { cs: Case; twist: Twist; outDir: string; sourceDir: string; mustRefuse: boolean }

const STALE = ['"stale"']

function trialFor(seed: number): Trial {
  const twist = TWISTS[seed % TWISTS.length]!
  const outDir = `out/lie-${seed}`
  const sourceDir = twist === 'input-changes' ? `own-${seed}` : 'prop'
  const cs = generate(seed, { sourceDir, sources, outDir, mutate: seed % 2 === 0 })
  const sinks = cs.job.nodes.filter(n => n.op === 'collect' || n.op === 'count' || n.op === 'write_jsonl')
  const input = cs.job.nodes.find(n => n.op === 'read_jsonl')!
  const extra = (n: NodeSpec): void => { cs.job = { ...cs.job, nodes: [...cs.job.nodes, n] } }
  let mustRefuse = false
  switch (twist) {
    case 'output-exists':
    case 'overwrite': {
      const dir = join(data, outDir, 'old')
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'part-00099'), STALE.join('\n') + '\n')
      writeFileSync(join(dir, '_SUCCESS'), '')
      extra({ id: 'old_sink', op: 'write_jsonl', input: sinks[0]!.input!, path: `${outDir}/old`, ...(twist === 'overwrite' ? { overwrite: true } : {}) })
      cs.want.set('old_sink', cs.want.get(sinks[0]!.id)!)
      mustRefuse = twist === 'output-exists'
      break
    }
    case 'sinks-collide': {
      const path = seed % 4 === 0 ? `${outDir}/twice` : `${outDir}/twice/inner`
      extra({ id: 'twice_a', op: 'write_jsonl', input: sinks[0]!.input!, path: `${outDir}/twice`, overwrite: true })
      extra({ id: 'twice_b', op: 'write_jsonl', input: sinks[0]!.input!, path, overwrite: true })
      mustRefuse = true
      break
    }
    case 'output-in-input':
      extra({ id: 'into_input', op: 'write_jsonl', input: sinks[0]!.input!, path: `${input.path}/out-${seed}`, overwrite: true })
      mustRefuse = true
      break
    case 'input-changes':
      cpSync(join(data, 'prop'), join(data, sourceDir), { recursive: true })
      break
    case 'none':
      break
  }
  return { cs, twist, outDir, sourceDir, mustRefuse }
}

/** Changes the seed's own copy of the inputs under the running cluster. */
function changeInputs(t: Trial): void {
  const victim = join(data, t.sourceDir, t.cs.seed % 3 === 0 ? 'b' : 'a', 'f1.jsonl')
  if (Math.floor(t.cs.seed / 10) % 2 === 0) rmSync(victim, { force: true })
  else truncateSync(victim, 7)
}

type Outcome = { refused: { code: string; message: string } } | { id: string }

async function submit(cluster: Cluster, job: JobRequest): Promise<Outcome> {
  try {
    return { id: await cluster.client.submit(job) }
  } catch (e) {
    const err = e as { code?: string; message?: string; status?: number }
    if (err.status === 400) return { refused: { code: err.code ?? '', message: err.message ?? '' } }
    throw e
  }
}

/** What is wrong with one trial's outcome (empty when it is allowed and exact). */
function judge(t: Trial, outcome: Outcome, status: JobStatus | null, problems: string[]): string[] {
  if ('refused' in outcome) {
    const { code, message } = outcome.refused
    if (!t.mustRefuse) return [`refused for nothing: ${code} ${message}`]
    if (code === '' || message === '') return ['refused without saying why']
    if (t.twist === 'output-exists') {
      // nothing of the old output may be touched by a refused job
      const dir = join(data, t.outDir, 'old')
      if (!existsSync(join(dir, '_SUCCESS')) || readFileSync(join(dir, 'part-00099'), 'utf8') !== STALE.join('\n') + '\n') return ['a refused job touched the existing output']
    }
    if (t.twist === 'sinks-collide' && !(message.includes('twice_a') && message.includes('twice_b'))) return [`the refusal does not name both sinks: ${message}`]
    return []
  }
  if (t.mustRefuse) return [`accepted a job that must be refused (${t.twist}); it ended ${status?.state}`]
  if (status === null) return ['no status']
  if (status.state === 'FAILED') {
    if (t.twist !== 'input-changes') return [`FAILED for nothing: ${JSON.stringify(status.error)}`]
    const why = status.error?.message ?? ''
    return /INPUT_CHANGED|changed|gone|missing/i.test(why) && why.includes('f1.jsonl') ? [] : [`FAILED without naming the changed input: ${why}`]
  }
  // SUCCEEDED: exact against the interpreter (for a changed input, against the input as planned)
  return problems
}

test(`${SEEDS} random jobs on a cluster: what SUCCEEDED equals the sequential interpreter, the rest says why`, async () => {
  const cluster = c
  if (cluster === undefined) throw new Error('the cluster did not start (see beforeAll)')
  const trials = Array.from({ length: SEEDS }, (_, i) => trialFor(FIRST_SEED + i))
  // All submitted at once: the cluster runs them side by side in submission order, so the inputs
  // of later jobs change before their tasks run.
  const outcomes: Outcome[] = []
  for (const t of trials) {
    outcomes.push(await submit(cluster, t.cs.job))
    if (t.twist === 'input-changes' && 'id' in outcomes.at(-1)!) changeInputs(t)
  }
  const failures: string[] = []
  const tally = { succeeded: 0, failed: 0, refused: 0 }
  for (const [i, t] of trials.entries()) {
    const outcome = outcomes[i]!
    let status: JobStatus | null = null
    let problems: string[] = []
    if ('id' in outcome) {
      status = await cluster.client.waitDone(outcome.id, { timeoutMs: 150_000, pollMs: 50 })
      const result = status.state === 'SUCCEEDED' ? await cluster.client.result(outcome.id) : null
      problems = problemsOf(t.cs, data, status, result)
      if (status.state === 'SUCCEEDED') tally.succeeded++
      else tally.failed++
    } else tally.refused++
    const wrong = judge(t, outcome, status, problems)
    if (wrong.length > 0) failures.push(`seed ${t.cs.seed} (${t.twist}): ${wrong.join('; ')}\n  job: ${JSON.stringify(t.cs.job)}`)
  }
  console.log(`results do not lie: ${SEEDS} seeds from ${FIRST_SEED}: ${tally.succeeded} succeeded, ${tally.failed} failed, ${tally.refused} refused, ${failures.length} wrong`)
  expect(failures).toEqual([])
  // the generator did make the shapes this test is for
  const ops = trials.flatMap(t => t.cs.job.nodes.map(n => n.op))
  for (const op of ['union', 'join', 'sort', 'group_by_key', 'distinct', 'reduce_by_key', 'write_jsonl', 'count', 'collect']) expect(ops).toContain(op)
  expect(tally.succeeded).toBeGreaterThan(SEEDS / 2)
}, 170_000)
