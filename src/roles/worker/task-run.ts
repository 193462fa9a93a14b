// Runs one task attempt inside a task thread: reads its input (a split of a file, or shuffle blocks
// fetched from peers), pushes it through the stage pipeline, writes shuffle blocks and sink output.
// Record work lives in src/engine; this file only does the I/O around it.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { NodeSpec } from '../../api/jobs'
import { authHeaders } from '../../api/auth'
import type { SinkOutput, SplitWire, TaskFailureWire, TaskSpec } from '../../api/tasks'
import { FrameDecoder } from '../../engine/codec'
import { LineCutter } from '../../engine/lines'
import { csvHeader, InputLineError, sourceDecoder } from '../../engine/operators/sources'
import { KeySampler, keysOf, sampleSizePerTask, sortKeyFunction } from '../../engine/operators/sort'
import { buildStagePipeline, type Consumer } from '../../engine/pipeline'
import { describeRecord, UdfError } from '../../engine/records'
import { createReducer, ShuffleWriter } from '../../engine/shuffle'
import { HashJoin } from '../../engine/operators/join'
import { safe } from './block-store'
import { DiskFullError, FileRunStore } from './run-store'
import { Reservation, SharedBudget, estimateBytes } from '../../engine/spill/budget'
import type { SpillContext } from '../../engine/spill/external'
import { StreamingJoin } from '../../engine/spill/join'
import type { BlockFile, ThreadEnv, ThreadResult } from './thread-protocol'

const READ_CHUNK_BYTES = 4 * 1024 * 1024
const WRITE_FLUSH_CHARS = 1 << 20

const COLLECT_TASK_LIMIT_CHARS = 15 * 1024 * 1024

/** A failure no retry can fix: the job fails at once. */
export class FatalTaskError extends Error {
  constructor(readonly nodeId: string, message: string) { super(message) }
}

export class FetchFailed extends Error {
  constructor(readonly fromWorker: string, message: string, readonly unreachable = false) { super(message) }
}

type SinkRun = Consumer & { finish(): Promise<SinkOutput> }

export async function runTask(spec: TaskSpec, env: ThreadEnv): Promise<ThreadResult> {
  const metrics = { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 }
  const writers: ShuffleWriter[] = []
  const sinks: SinkRun[] = []
  const temps: string[] = []
  // Every buffer of this task reserves from the worker's shared budget; past it, data goes to
  // the work dir. Map outputs are segment files of the shuffle; reduce-side runs are temporary.
  const budget = new SharedBudget(env.budget, env.spillAtBytes, env.floorBytes)
  const onSpill = (bytes: number): void => { metrics.spilled_bytes += bytes }
  const jobDir = join(env.workDir, safe(spec.job_id))
  // A full collection after a spill returns the spilled buffers' memory at once; JSC on a large
  // machine would otherwise let the heap grow far past the budget before collecting.
  const afterSpill = (): void => Bun.gc(true)
  const spillFor = (dir: string): SpillContext => ({ store: new FileRunStore(join(jobDir, dir), safe(spec.attempt_id)), budget, onSpill, afterSpill })
  try {
    const read = { records: 0, bytes: 0 }
    const broadcasts = await fetchBroadcasts(spec, env, budget, read)
    metrics.shuffle_bytes_read = read.bytes
    const root = buildStagePipeline(spec.stage, spec.params, {
      shuffle: w => { const s = new ShuffleWriter(w, spec.params, spillFor(safe(w.shuffle_id)), spec.range_bounds?.[w.shuffle_id]); writers.push(s); return s },
      sink: node => { const s = openSink(node, spec, env, temps); sinks.push(s); return s },
      broadcast: id => broadcasts.get(id)!,
    })
    if (spec.stage.root.kind === 'source') {
      if (spec.split === null) throw new Error('a source task needs a split')
      metrics.records_in = await readSourceSplit(spec.stage.root.node, spec.split, env, root)
    } else {
      const reduced = await reduceShuffle(spec, env, root, { ...spillFor('spill'), store: new FileRunStore(join(jobDir, 'spill', safe(spec.attempt_id)), safe(spec.attempt_id)) })
      metrics.records_in = reduced.records
      metrics.shuffle_bytes_read += reduced.bytes
    }
    const blocks: BlockFile[] = []
    for (const w of writers) {
      const segments = w.finish()
      blocks.push({ shuffle_id: w.shuffleId, segments })
      for (const seg of segments) metrics.shuffle_bytes_written += seg.offsets.at(-1)!
      metrics.records_out += w.records
    }
    const outputs: SinkOutput[] = []
    for (const s of sinks) {
      const o = await s.finish()
      if (o.op !== 'sample') metrics.records_out += o.records
      outputs.push(o)
    }
    await commitOutputs(spec, env, temps)
    return { attempt_id: spec.attempt_id, state: 'SUCCEEDED', metrics, blocks, sinks: outputs }
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true })
    return { attempt_id: spec.attempt_id, state: 'FAILED', metrics, blocks: [], sinks: [], failure: toFailure(e) }
  } finally {
    budget.releaseAll()
    // This attempt's runs only: another task of the job on this worker may be reading its own.
    rmSync(join(jobDir, 'spill', safe(spec.attempt_id)), { recursive: true, force: true })
    // A task that spilled, or one under a small budget, gives its heap back before the next task.
    // Not every task: a full collection costs about a millisecond even on a small heap, which
    // dominates tiny tasks.
    if (metrics.spilled_bytes > 0 || env.spillAtBytes < 256 * 1024 * 1024) Bun.gc(true)
  }
}

function toFailure(e: unknown): TaskFailureWire {
  if (e instanceof UdfError) return { reason: 'udf-error', message: e.message, node_id: e.nodeId, record: e.record }
  if (e instanceof DiskFullError) return { reason: 'task-error', message: e.message }
  if (e instanceof FatalTaskError) return { reason: 'fatal', message: e.message, node_id: e.nodeId }
  if (e instanceof FetchFailed) return { reason: 'fetch-failed', message: e.message, from_worker: e.fromWorker, unreachable: e.unreachable }
  const message = e instanceof Error ? e.message : String(e)
  return { reason: 'task-error', message }
}

/** Streams the split's records into the pipeline; returns how many there were. */
async function readSourceSplit(node: NodeSpec, split: SplitWire, env: ThreadEnv, root: Consumer): Promise<number> {
  const path = join(env.dataDir, split.path)
  let records = 0
  try {
    const header = node.op === 'read_csv' && node.header !== false && split.start > 0 ? await readCsvHeader(node, path) : null
    const decoder = sourceDecoder(node, { path: split.path, atFileStart: split.start === 0, header })
    const take = (recs: unknown[]): void => { if (recs.length > 0) { records += recs.length; root.push(recs) } }
    // The chunk read at once is a small slice of the budget: lines, their strings and the records
    // made from them live as long as the chunk is in the pipeline, and a flat_map multiplies them
    // (a 4 MiB chunk of words was 80 MiB of heap).
    const chunkBytes = Math.max(64 * 1024, Math.min(READ_CHUNK_BYTES, Math.floor(env.spillAtBytes / 32)))
    await readLines(path, split, lines => take(decoder.decode(lines)), chunkBytes)
    take(decoder.finish())
  } catch (e) {
    if (e instanceof InputLineError) throw await badLine(node, path, split, e)
    throw e
  }
  return records
}

async function readLines(path: string, split: { start: number; end: number }, onLines: (lines: string[]) => void, chunkBytes = READ_CHUNK_BYTES): Promise<void> {
  const file = Bun.file(path)
  const cutter = new LineCutter(split)
  let pos = cutter.readFrom
  const size = file.size
  while (!cutter.done && pos < size) {
    const chunk = await file.slice(pos, Math.min(size, pos + chunkBytes)).bytes()
    pos += chunk.length
    const lines = cutter.push(chunk)
    if (lines.length > 0) onLines(lines)
  }
  if (!cutter.done) {
    const last = cutter.finish()
    if (last.length > 0) onLines(last)
  }
}

/** A split that does not start its file still needs the file's header row: its first line that is
 *  not blank, as the split at the file's start sees it. */
async function readCsvHeader(node: NodeSpec, path: string): Promise<string[] | null> {
  const file = Bun.file(path)
  const cutter = new LineCutter({ start: 0, end: file.size })
  let first: string | undefined
  for (let pos = 0; first === undefined && !cutter.done && pos < file.size; pos += READ_CHUNK_BYTES) {
    first = cutter.push(await file.slice(pos, Math.min(file.size, pos + READ_CHUNK_BYTES)).bytes()).find(l => l !== '')
  }
  first ??= cutter.finish().find(l => l !== '')
  if (first === undefined) return null
  try {
    return csvHeader(node, first)
  } catch (e) {
    if (e instanceof InputLineError) throw new InputLineError(-1, e.message, e.line)
    throw e
  }
}

/**
 * A line of the input that does not parse fails the task with `file:line`, the line counted from the
 * start of the file. The lines before the split are only counted here, on the error path, so a
 * healthy split never reads bytes before its start. (lineInSplit -1 means the header line.)
 */
async function badLine(node: NodeSpec, path: string, split: SplitWire, e: InputLineError): Promise<UdfError> {
  let lineNo = 1
  if (e.lineInSplit >= 0) {
    // The split's first line starts after the first '\n' at offset >= start - 1 (see lines.ts),
    // so it is preceded by that newline and by every newline in [0, start - 1).
    const before = split.start > 0 ? await countNewlines(path, split.start - 1) + 1 : 0
    lineNo = before + e.lineInSplit + 1
  }
  return new UdfError(node.id, `${split.path}:${lineNo}: ${e.message}`, describeRecord(e.line))
}

async function countNewlines(path: string, end: number): Promise<number> {
  const file = Bun.file(path)
  let n = 0
  for (let pos = 0; pos < end; pos += READ_CHUNK_BYTES) {
    const chunk = await file.slice(pos, Math.min(end, pos + READ_CHUNK_BYTES)).bytes()
    for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) n++
  }
  return n
}

/**
 * The stage's broadcast joins, each with its small side fetched whole (partition 0 of its shuffle,
 * from every map output) into the hash join's table. Held for the whole task and counted against
 * the budget; one that does not fit fails the task with what to do, since the table cannot spill
 * (the planner only broadcasts inputs of at most `broadcast_bytes`).
 */
async function fetchBroadcasts(spec: TaskSpec, env: ThreadEnv, budget: SharedBudget, counts: { records: number; bytes: number }): Promise<Map<string, HashJoin>> {
  const joins = new Map<string, HashJoin>()
  for (const b of spec.stage.broadcasts ?? []) {
    const node = spec.stage.nodes.find(n => n.id === b.node_id)!
    const join = new HashJoin(node, b.side, BROADCAST_BATCH)
    const inputs = spec.shuffle_inputs.filter(i => i.shuffle_id === b.shuffle_id)
    const held = new Reservation(budget)   // given back with the rest of the task's budget
    await fetchAll(spec, env, fetchRequests(spec, env, inputs, 0), (_side, batch) => {
      join.build(batch)
      let bytes = 0
      for (const r of batch) bytes += 48 + estimateBytes(r)
      if (!held.grow(bytes)) {
        throw new Error(`the small side of join "${b.node_id}" (over ${Math.ceil(held.bytes / 2 ** 20)} MiB in memory) does not fit this worker's memory budget: give workers more --max-mem, or set "broadcast_bytes" lower on the job (0: never broadcast)`)
      }
    }, counts)
    joins.set(b.node_id, join)
  }
  return joins
}

const BROADCAST_BATCH = 8192

async function reduceShuffle(spec: TaskSpec, env: ThreadEnv, root: Consumer, spill: SpillContext): Promise<{ records: number; bytes: number }> {
  if (spec.stage.root.kind !== 'shuffle') throw new Error('not a shuffle stage')
  const node = spec.stage.root.node
  const counts = { records: 0, bytes: 0 }
  if (node.op === 'join') {
    await joinShuffle(spec, env, root, spill, spec.stage.root.shuffle_ids, counts)
    return counts
  }
  const reducer = createReducer(node, spec.params, spill)
  const ids = spec.stage.root.shuffle_ids   // not the stage's broadcast inputs
  const own = spec.shuffle_inputs.filter(i => ids.includes(i.shuffle_id))
  await fetchAll(spec, env, fetchRequests(spec, env, own), (side, batch) => reducer.push(side, batch), counts)
  reducer.emit(root)
  return counts
}

/**
 * A join reads its smaller input first (by the bytes the map outputs report) into a hash table,
 * then streams the other past it: joined records flow on while the larger input is still being
 * fetched, and it is never held. When the build side does not fit the budget, StreamingJoin falls
 * back to the spilling sort-merge join.
 */
async function joinShuffle(spec: TaskSpec, env: ThreadEnv, root: Consumer, spill: SpillContext, sideOf: readonly string[], counts: { records: number; bytes: number }): Promise<void> {
  const inputsOf = (side: number): TaskSpec['shuffle_inputs'] => spec.shuffle_inputs.filter(i => sideOf.indexOf(i.shuffle_id) === side)
  // An output that did not say its size counts as large: the side known to be small is built.
  const bytesOf = (side: number): number => inputsOf(side).reduce((n, i) => n + i.map_outputs.reduce((m, o) => m + (o.bytes ?? Infinity), 0), 0)
  const buildSide: 0 | 1 = bytesOf(0) < bytesOf(1) ? 0 : 1
  const join = new StreamingJoin(spec.stage.root.node, buildSide, spill, root)
  await fetchAll(spec, env, fetchRequests(spec, env, inputsOf(buildSide)), (_side, batch) => join.build(batch), counts)
  await fetchAll(spec, env, fetchRequests(spec, env, inputsOf(1 - buildSide)), (_side, batch) => join.probe(batch), counts)
  join.finish()
}

/** The fetches of some shuffle inputs, batched per peer, peers interleaved. */
function fetchRequests(spec: TaskSpec, env: ThreadEnv, inputs: TaskSpec['shuffle_inputs'], partition = spec.partition): FetchRequest[] {
  const sideOf = spec.stage.root.kind === 'shuffle' ? spec.stage.root.shuffle_ids : []
  // Requests of bounded size, two at a time: the HTTP client buffers a response as fast as the
  // network gives it, whatever the reducer can take, so what is in flight must fit the budget.
  const maxRequestBytes = Math.max(1 << 20, Math.min(64 << 20, Math.floor(env.spillAtBytes / 4)))
  const requests: FetchRequest[] = []
  for (const input of inputs) {
    // A join reads two shuffles: the side tells its reducer which input a batch belongs to.
    const side = Math.max(0, sideOf.indexOf(input.shuffle_id))
    const byAddress = new Map<string, FetchRequest[]>()
    for (const m of input.map_outputs) {
      const list = byAddress.get(m.address) ?? []
      const last = list.at(-1)
      const size = m.bytes ?? maxRequestBytes
      if (last !== undefined && last.bytes + size <= maxRequestBytes) { last.attempts.push(m.attempt_id); last.bytes += size }
      else list.push({ address: m.address, worker: m.worker_id, shuffle: input.shuffle_id, side, partition, attempts: [m.attempt_id], bytes: size })
      byAddress.set(m.address, list)
    }
    // Interleave peers, so that two requests in flight go to two peers where they can.
    const lists = [...byAddress.values()]
    for (let i = 0; lists.some(l => i < l.length); i++) for (const l of lists) if (i < l.length) requests.push(l[i]!)
  }
  return requests
}

type OnBatch = (side: number, batch: unknown[]) => void

/** Runs the requests two at a time, handing each decoded batch to `onBatch` as it arrives. */
async function fetchAll(spec: TaskSpec, env: ThreadEnv, requests: FetchRequest[], onBatch: OnBatch, counts: { records: number; bytes: number }): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < requests.length) await fetchBlocks(spec, env, requests[next++]!, onBatch, counts)
  }
  await Promise.all([lane(), lane()])
}

type FetchRequest = { address: string; worker: string; shuffle: string; side: number; partition: number; attempts: string[]; bytes: number }

async function fetchBlocks(spec: TaskSpec, env: ThreadEnv, r: FetchRequest, onBatch: OnBatch, counts: { records: number; bytes: number }): Promise<void> {
  const body = { job_id: spec.job_id, shuffle_id: r.shuffle, reduce_partition: r.partition, attempts: r.attempts }
  let res: Response
  try {
    res = await fetch(`http://${r.address}/shuffle_data/fetch`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(env.token) }, body: JSON.stringify(body),
    })
  } catch (e) {
    const refused = (e as { code?: unknown }).code === 'ECONNREFUSED'
    throw new FetchFailed(r.worker, `cannot reach worker ${r.worker} at ${r.address} for shuffle ${r.shuffle}: ${(e as Error).message}`, refused)
  }
  if (!res.ok || res.body === null) {
    throw new FetchFailed(r.worker, `worker ${r.worker} at ${r.address} answered ${res.status} for shuffle ${r.shuffle}: ${await res.text()}`)
  }
  const decoder = new FrameDecoder()
  // What the records meet downstream (a join streams them through the rest of the stage: its
  // functions, spills, sinks) fails the task as it is; only the transfer and decoding failing is the
  // peer's fault, to be answered by recomputing its outputs.
  let downstream: unknown
  try {
    for await (const chunk of res.body) {
      counts.bytes += chunk.length
      for (const batch of decoder.push(chunk)) {
        counts.records += batch.length
        try { onBatch(r.side, batch) } catch (e) { downstream = e; throw e }
      }
    }
    decoder.finish()
  } catch (e) {
    if (e === downstream || e instanceof UdfError) throw e
    throw new FetchFailed(r.worker, `shuffle ${r.shuffle} from worker ${r.worker} broke off: ${(e as Error).message}`)
  }
}


const partName = (partition: number): string => `part-${String(partition).padStart(5, '0')}`

function openSink(node: NodeSpec, spec: TaskSpec, env: ThreadEnv, temps: string[]): SinkRun {
  switch (node.op) {
    case 'count': {
      let n = 0
      return { push(b) { n += b.length }, finish: async () => ({ node_id: node.id, op: 'count', records: n }) }
    }
    case 'collect': {
      const values: unknown[] = []
      const limit = node.limit ?? 100000
      let n = 0
      return {
        push(b) { n += b.length; for (let i = 0; i < b.length && values.length < limit; i++) values.push(b[i]) },
        finish: async () => {
          // The values travel in the task's report, whose body is capped at 16 MiB.
          if (JSON.stringify(values).length > COLLECT_TASK_LIMIT_CHARS) {
            throw new FatalTaskError(node.id, `collect "${node.id}" gathered more than ${COLLECT_TASK_LIMIT_CHARS >> 20} MiB in one partition: write the result with write_text or write_jsonl instead`)
          }
          return { node_id: node.id, op: 'collect', records: n, values }
        },
      }
    }
    case 'sample': {
      // A sort's sample stage: a reservoir sample of the sort keys, for the master's range bounds.
      const sortId = spec.stage.sample_of ?? node.id
      const keyOf = sortKeyFunction({ ...node, id: sortId }, spec.params)
      const sampler = new KeySampler(sampleSizePerTask(node.partitions ?? 1, spec.stage.partitions), spec.partition)
      return {
        push(b) { sampler.pushKeys(keysOf(sortId, keyOf, b)) },
        finish: async () => ({ node_id: node.id, op: 'sample', records: sampler.count, values: sampler.sample }),
      }
    }
    case 'write_text':
    case 'write_jsonl': {
      // Each attempt writes in its own folder; commitOutputs moves the part into place only when
      // the master says this attempt is the one that commits the partition. After a union the sink
      // runs in several stages, and the plan says where this stage's part numbers start.
      const part = (spec.stage.sink_parts?.[node.id] ?? 0) + spec.partition
      const temp = join(env.dataDir, node.path!, '_temporary', safe(spec.attempt_id), partName(part))
      mkdirSync(dirname(temp), { recursive: true })
      temps.push(temp)
      const writer = Bun.file(temp).writer({ highWaterMark: WRITE_FLUSH_CHARS })
      const asJson = node.op === 'write_jsonl'
      let n = 0
      return {
        push(b) {
          let text = ''
          for (let i = 0; i < b.length; i++) {
            const r = b[i]
            text += (!asJson && typeof r === 'string' ? r : JSON.stringify(r)) + '\n'
          }
          n += b.length
          writer.write(text)
        },
        finish: async () => { await writer.end(); return { node_id: node.id, op: node.op, records: n } },
      }
    }
    default:
      throw new Error(`op ${node.op} is not a sink`)
  }
}

async function commitOutputs(spec: TaskSpec, env: ThreadEnv, temps: readonly string[]): Promise<void> {
  if (temps.length === 0) return
  const res = await fetch(`${env.masterUrl}/tasks/commit`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(env.token) },
    body: JSON.stringify({ attempt_id: spec.attempt_id, worker_id: env.workerId }),
  })
  const answer = (await res.json()) as { commit?: boolean }
  if (!res.ok || answer.commit !== true) {
    for (const t of temps) rmSync(t, { force: true })
    throw new Error(`the master did not let attempt ${spec.attempt_id} commit its output (another attempt did)`)
  }
  for (const t of temps) {
    // temp = OUT/_temporary/ATTEMPT/part-N → OUT/part-N; rename is atomic within one file system.
    const target = join(dirname(dirname(dirname(t))), t.slice(t.lastIndexOf('/') + 1))
    renameSync(t, target)
    rmSync(dirname(t), { recursive: true, force: true })
  }
}
