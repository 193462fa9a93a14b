// Runs one reduce task of a job in this thread, the way a worker's task thread would, so that
// `bun --cpu-prof` sees the reduce path (fetched frames, the reducer, the sink); a worker runs
// tasks on Bun Workers, which the profiler does not follow. Two steps, so that the profile holds
// the reduce alone:
//
//   bun bench/profile-reduce.ts map JOB.json DATA_DIR WORK_DIR [--partitions 1] [--split-mb 16]
//       runs every map task of the stage that writes the reduce stage's shuffle (the real map-side
//       code: runTask), its blocks under WORK_DIR, and writes WORK_DIR/manifest.json
//   bun --cpu-prof --cpu-prof-dir=DIR bench/profile-reduce.ts reduce WORK_DIR [--part 0] [--max-mem-mb 1024]
//       runs reduce partition --part over those blocks, writing the sink's part under DATA_DIR
//   bun bench/lib/profile-top.ts DIR/*.cpuprofile
//
// The reduce fetches its blocks through a stand-in for the peer client that streams the block
// files in 256 KiB chunks, as a peer's response arrives (frames straddle chunks); everything after
// the fetch is the worker's code (src/roles/worker/task/fetch.ts reduceShuffle, run.ts's wiring).
// A sort's range bounds come from the keys of the records the map stage makes of each input file's
// first 4 MiB. Prints the reduce's seconds (wall and CPU), the output's size, records and sha256
// (equal before and after a change).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { JobRequest } from '../src/api/jobs'
import type { PeerClient } from '../src/api/peers'
import type { ShuffleFetch, StagePlan, TaskSpec } from '../src/api/tasks'
import { validateJob } from '../src/engine/dag'
import { planStages, SUPPORTED_OPS } from '../src/engine/plan'
import { planSplits } from '../src/engine/splits'
import { boundsFromSamples, keysOf, sortKeyFunction } from '../src/engine/operators/sort'
import { buildStagePipeline } from '../src/engine/pipeline'
import { newBudgetBuffer, newPressureBuffer, SharedBudget } from '../src/engine/spill/budget'
import { answerListing } from '../src/roles/worker/listing'
import { runTask } from '../src/roles/worker/task/run'
import { reduceShuffle } from '../src/roles/worker/task/fetch'
import { mergeCollectBytes } from '../src/engine/spill/external'
import { FileRunStore } from '../src/roles/worker/task/run-store'
import { youngCollector } from '../src/roles/worker/task/young-gc'
import { SPILL_FRACTION } from '../src/roles/worker/memory'
import { openSink, type SinkRun } from '../src/roles/worker/task/sinks'
import type { BlockFile } from '../src/roles/worker/thread-protocol'

type Manifest = { job: string; dataDir: string; partitions: number; shuffleId: string; maps: { attempt: string; blocks: BlockFile[] }[] }

const opt = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] ?? fallback : fallback }
const usage = 'usage: profile-reduce.ts map JOB.json DATA_DIR WORK_DIR [--partitions 1] | reduce WORK_DIR [--part 0] [--max-mem-mb 1024]'
const MiB = 2 ** 20

function plan(jobPath: string, partitions: number): { req: JobRequest; stages: StagePlan[]; reduce: StagePlan; writer: StagePlan } {
  const req = JSON.parse(readFileSync(jobPath, 'utf8')) as JobRequest
  const stages = planStages(validateJob(req, SUPPORTED_OPS), partitions)
  const reduce = stages.find(s => s.root.kind === 'shuffle')
  if (reduce === undefined || reduce.root.kind !== 'shuffle') throw new Error('the job has no reduce stage')
  const id = reduce.root.shuffle_ids[0]!
  const writer = stages.find(s => s.root.kind === 'source' && s.sample_of === undefined && s.shuffle_writes.some(w => w.shuffle_id === id))
  if (writer === undefined) throw new Error(`no source stage writes shuffle ${id}`)
  return { req, stages, reduce, writer }
}

/** Bounds of a sort's reduce partitions from the records the stage makes of each input file's first 4 MiB. */
function sampledBounds(writer: StagePlan, files: readonly string[], params: Record<string, unknown>, partitions: number): unknown[] {
  const w = writer.shuffle_writes[0]!
  const keyOf = sortKeyFunction(w.node, params)
  const samples = files.map(f => {
    const fd = openSync(f, 'r')
    const buf = Buffer.alloc(4 * MiB)
    const n = readSync(fd, buf, 0, buf.length, 0)
    closeSync(fd)
    const lines = buf.subarray(0, n).toString('utf8').split('\n').slice(0, -1)
    // The sort sees what the stage makes of the lines (a map before it), not the lines.
    const records: unknown[] = []
    const root = buildStagePipeline(writer, params, {
      shuffle: () => ({ push: b => { for (const r of b) records.push(r) } }),
      sink: node => { throw new Error(`profile-reduce samples sort keys of a stage that writes a shuffle, not sink ${node.id}`) },
    })
    root.push(lines)
    return { keys: keysOf(w.node.id, keyOf, records), count: records.length }
  })
  return boundsFromSamples(samples, partitions)
}

async function mapSide(jobPath: string, dataDirArg: string, workDirArg: string): Promise<void> {
  const partitions = Number(opt('partitions', '1'))
  const { req, writer } = plan(jobPath, partitions)
  const dataDir = resolve(dataDirArg)
  const workDir = resolve(workDirArg)
  rmSync(workDir, { recursive: true, force: true })
  mkdirSync(workDir, { recursive: true })
  if (writer.root.kind !== 'source') throw new Error('unreachable')
  const listing = answerListing(dataDir, { inputs: [{ node_id: writer.root.node.id, path: writer.root.node.path! }], outputs: [] })
  const files = listing.inputs[0]!.files
  const splits = planSplits(files, Math.round(Number(opt('split-mb', '16')) * MiB))
  const shuffleId = writer.shuffle_writes[0]!.shuffle_id
  const params = req.params ?? {}
  const bounds = writer.shuffle_writes[0]!.node.op === 'sort' ? sampledBounds(writer, files.map(f => join(dataDir, f.path)), params, partitions) : undefined
  const maxMem = 1024 * MiB
  const manifest: Manifest = { job: resolve(jobPath), dataDir, partitions, shuffleId, maps: [] }
  const t0 = performance.now()
  for (const [i, split] of splits.entries()) {
    const attempt = `profile:${writer.stage_id}:${i}:0`
    const spec: TaskSpec = {
      job_id: 'profile', task_id: `profile:${writer.stage_id}:${i}`, attempt_id: attempt, attempt: 0, stage_id: writer.stage_id, partition: i,
      params, stage: writer, split: { path: split.path, start: split.start, end: split.end, file_size: split.fileSize }, shuffle_inputs: [], incarnation: 'profile',
    }
    if (bounds !== undefined) spec.range_bounds = { [shuffleId]: bounds }
    const r = await runTask(spec, { dataDir, workDir, masterUrl: 'http://127.0.0.1:9', workerId: 'profile', token: undefined, budget: newBudgetBuffer(), pressure: newPressureBuffer(), spillAtBytes: Math.floor(SPILL_FRACTION * maxMem), floorBytes: 4 * MiB })
    if (r.state !== 'SUCCEEDED') throw new Error(`map task ${i} failed: ${JSON.stringify(r.failure)}`)
    manifest.maps.push({ attempt, blocks: r.blocks })
  }
  writeFileSync(join(workDir, 'manifest.json'), JSON.stringify(manifest))
  console.log(JSON.stringify({ maps: splits.length, bounds, seconds: (performance.now() - t0) / 1000 }))
}

/** Streams one reduce partition of the named map attempts from their segment files. */
function localPeers(m: Manifest): PeerClient {
  const CHUNK = 256 * 1024
  return {
    async *shuffle(_address: string, _peer: string, req: ShuffleFetch): AsyncGenerator<Uint8Array> {
      for (const attempt of req.attempts) {
        const map = m.maps.find(x => x.attempt === attempt)!
        for (const seg of map.blocks.find(b => b.shuffle_id === req.shuffle_id)!.segments) {
          const start = seg.offsets[req.reduce_partition]!, end = seg.offsets[req.reduce_partition + 1]!
          const file = Bun.file(seg.path)
          for (let at = start; at < end; at += CHUNK) yield await file.slice(at, Math.min(end, at + CHUNK)).bytes()
        }
      }
    },
  } as unknown as PeerClient
}

async function reduceSide(workDirArg: string): Promise<void> {
  const workDir = resolve(workDirArg)
  const m = JSON.parse(readFileSync(join(workDir, 'manifest.json'), 'utf8')) as Manifest
  const { req, reduce } = plan(m.job, m.partitions)
  const part = Number(opt('part', '0'))
  const maxMem = Number(opt('max-mem-mb', '1024')) * MiB
  const spec: TaskSpec = {
    job_id: 'profile', task_id: `profile:${reduce.stage_id}:${part}`, attempt_id: `profile:${reduce.stage_id}:${part}:0`, attempt: 0, stage_id: reduce.stage_id, partition: part,
    params: req.params ?? {}, stage: reduce, split: null, incarnation: 'profile',
    shuffle_inputs: [{ shuffle_id: m.shuffleId, map_outputs: m.maps.map((x, i) => {
      const seg = x.blocks.find(b => b.shuffle_id === m.shuffleId)!.segments
      return { map_partition: i, attempt_id: x.attempt, worker_id: 'local', address: 'local', bytes: seg.reduce((n, s) => n + s.offsets[part + 1]! - s.offsets[part]!, 0) }
    }) }],
  }
  // As run.ts wires a reduce task, with a worker's budget at --max-mem.
  const spillAtBytes = Math.floor(SPILL_FRACTION * maxMem)
  const budget = new SharedBudget(newBudgetBuffer(), spillAtBytes, 4 * MiB)
  let spilled = 0
  const scratch = join(workDir, 'scratch')
  rmSync(scratch, { recursive: true, force: true })
  const moved = youngCollector()
  const spill = { store: new FileRunStore(scratch, 'profile', moved), budget, onSpill: (b: number) => { spilled += b }, afterSpill: () => Bun.gc(true), collectEveryBytes: mergeCollectBytes(spillAtBytes) }
  const temps: string[] = []
  const sinks: SinkRun[] = []
  const root = buildStagePipeline(reduce, spec.params, {
    shuffle: () => { throw new Error('profile-reduce runs stages that end in sinks') },
    sink: node => { const s = openSink(node, spec, m.dataDir, temps); sinks.push(s); return s },
  })
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const counts = await reduceShuffle(spec, { peers: localPeers(m), spillAtBytes, fetched: moved }, root, spill)
  for (const s of sinks) await s.finish()
  const seconds = (performance.now() - t0) / 1000
  // On a shared machine the wall time says little: the CPU seconds are the measure.
  const cpu = process.cpuUsage(cpu0)
  // Hashed by another process, out of the profile.
  const sums = temps.map(t => Bun.spawnSync(['sha256sum', t]).stdout.toString().split(' ')[0]!)
  const bytes = temps.reduce((n, t) => n + statSync(t).size, 0)
  for (const t of temps) rmSync(t, { force: true })
  const files = existsSync(scratch) ? readdirSync(scratch, { recursive: true }).length : 0
  console.log(JSON.stringify({ seconds, cpu_user_s: cpu.user / 1e6, cpu_sys_s: cpu.system / 1e6, records: counts.records, shuffle_bytes: counts.bytes, spilled_bytes: spilled, scratch_files: files, output_bytes: bytes, sha256: sums.join(','), rss_mib: Math.round(process.memoryUsage.rss() / MiB) }))
}

const [mode, a, b, c] = process.argv.slice(2)
if (mode === 'map' && a !== undefined && b !== undefined && c !== undefined) await mapSide(a, b, c)
else if (mode === 'reduce' && a !== undefined) await reduceSide(a)
else { console.error(usage); process.exit(2) }
