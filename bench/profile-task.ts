// Runs one map task of a job in this thread, the way a worker's task thread would, so that
// `bun --cpu-prof` sees the record path (a worker runs tasks on Bun Workers, which the profiler
// does not follow):
//
//   bun --cpu-prof --cpu-prof-dir=DIR bench/profile-task.ts JOB.json DATA_DIR [--split-mb 16] [--stage 0]
//       [--bounds A,B,C]   (a sort's map stage: the range bounds the master would have sampled)
//   bun bench/lib/profile-top.ts DIR/*.cpuprofile
//
// The task is partition 0 (the first split) of a source stage (--stage, default 0); its shuffle
// blocks go to a temporary folder. Follows src/roles/worker/index.ts for the thread's environment.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { JobRequest } from '../src/api/jobs'
import type { TaskSpec } from '../src/api/tasks'
import { validateJob } from '../src/engine/dag'
import { planStages, SUPPORTED_OPS } from '../src/engine/plan'
import { planSplits } from '../src/engine/splits'
import { newBudgetBuffer, newPressureBuffer } from '../src/engine/spill/budget'
import { answerListing } from '../src/roles/worker/listing'
import { runTask } from '../src/roles/worker/task/run'

const [jobPath, dataDirArg] = process.argv.slice(2)
if (jobPath === undefined || dataDirArg === undefined) { console.error('usage: profile-task.ts JOB.json DATA_DIR [--split-mb 16]'); process.exit(2) }
const opt = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] ?? fallback : fallback }
const splitBytes = Math.round(Number(opt('split-mb', '16')) * 2 ** 20)
const stageId = Number(opt('stage', '0'))
const dataDir = resolve(dataDirArg)
const req = JSON.parse(readFileSync(jobPath, 'utf8')) as JobRequest
const valid = validateJob(req, SUPPORTED_OPS)
const stages = planStages(valid, req.partitions ?? 4)
const stage = stages[stageId]!
if (stage === undefined || stage.root.kind !== 'source') {
  throw new Error(`stage ${stageId} does not read a source; source stages: ${stages.filter(s => s.root.kind === 'source').map(s => `${s.stage_id} (${s.root.node.id}${s.sample_of ? `, samples for ${s.sample_of}` : ''})`).join(', ')}`)
}
const listing = answerListing(dataDir, { inputs: [{ node_id: stage.root.node.id, path: stage.root.node.path! }], outputs: [] })
const split = planSplits(listing.inputs[0]!.files, splitBytes)[0]!
const workDir = mkdtempSync(join(tmpdir(), 'minispark-profile-'))
const spec: TaskSpec = {
  job_id: 'profile', task_id: `profile:${stageId}:0`, attempt_id: `profile:${stageId}:0:0`, attempt: 0, stage_id: stageId, partition: 0,
  params: req.params ?? {}, stage, split: { path: split.path, start: split.start, end: split.end, file_size: split.fileSize },
  shuffle_inputs: [], incarnation: 'profile',
}
const bounds = opt('bounds', '')
if (bounds !== '') spec.range_bounds = Object.fromEntries(stage.shuffle_writes.map(w => [w.shuffle_id, bounds.split(',')]))
const maxMem = 1024 ** 3
const t0 = performance.now()
const r = await runTask(spec, {
  dataDir, workDir, masterUrl: 'http://127.0.0.1:9', workerId: 'profile', token: undefined,
  budget: newBudgetBuffer(), pressure: newPressureBuffer(), spillAtBytes: Math.floor(0.6 * maxMem), floorBytes: 4 << 20,
})
const s = (performance.now() - t0) / 1000
console.log(JSON.stringify({ state: r.state, seconds: s, mb_per_s: (split.end - split.start) / 1e6 / s, metrics: r.metrics, failure: r.failure }))
rmSync(workDir, { recursive: true, force: true })
