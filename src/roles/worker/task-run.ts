// Runs one task attempt inside a task thread: reads its input (a split of a file, or shuffle blocks
// fetched from peers), pushes it through the stage pipeline, writes shuffle blocks and sink output.
// Record work lives in src/engine; this file only does the I/O around it.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { NodeSpec } from '../../api/jobs'
import { authHeaders } from '../../api/auth'
import type { SinkOutput, TaskFailureWire, TaskSpec } from '../../api/tasks'
import { FrameDecoder } from '../../engine/codec'
import { LineCutter } from '../../engine/lines'
import { buildStagePipeline, type Consumer } from '../../engine/pipeline'
import { UdfError } from '../../engine/records'
import { ShuffleReducer, ShuffleWriter } from '../../engine/shuffle'
import { BlockStore, safe } from './block-store'
import type { BlockFile, ThreadEnv, ThreadResult } from './thread-protocol'

const READ_CHUNK_BYTES = 4 * 1024 * 1024
const WRITE_FLUSH_CHARS = 1 << 20

export class FetchFailed extends Error {
  constructor(readonly fromWorker: string, message: string, readonly unreachable = false) { super(message) }
}

type SinkRun = Consumer & { finish(): Promise<SinkOutput> }

export async function runTask(spec: TaskSpec, env: ThreadEnv): Promise<ThreadResult> {
  const metrics = { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 }
  const writers: ShuffleWriter[] = []
  const sinks: SinkRun[] = []
  const temps: string[] = []
  try {
    const root = buildStagePipeline(spec.stage, spec.params, {
      shuffle: w => { const s = new ShuffleWriter(w, spec.params); writers.push(s); return s },
      sink: node => { const s = openSink(node, spec, env, temps); sinks.push(s); return s },
    })
    if (spec.stage.root.kind === 'source') {
      if (spec.split === null) throw new Error('a source task needs a split')
      metrics.records_in = await readTextSplit(join(env.dataDir, spec.split.path), spec.split, root)
    } else {
      const read = await reduceShuffle(spec, env, root)
      metrics.records_in = read.records
      metrics.shuffle_bytes_read = read.bytes
    }
    const blocks: BlockFile[] = []
    for (const w of writers) {
      const parts = w.finish()
      const path = BlockStore.fileName(env.workDir, spec.job_id, w.shuffleId, spec.attempt_id)
      blocks.push(writeBlockFile(path, w.shuffleId, parts))
      metrics.shuffle_bytes_written += blocks[blocks.length - 1]!.offsets.at(-1)!
      metrics.records_out += w.records
    }
    const outputs: SinkOutput[] = []
    for (const s of sinks) {
      const o = await s.finish()
      metrics.records_out += o.records
      outputs.push(o)
    }
    await commitOutputs(spec, env, temps)
    return { attempt_id: spec.attempt_id, state: 'SUCCEEDED', metrics, blocks, sinks: outputs }
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true })
    return { attempt_id: spec.attempt_id, state: 'FAILED', metrics, blocks: [], sinks: [], failure: toFailure(e) }
  }
}

function toFailure(e: unknown): TaskFailureWire {
  if (e instanceof UdfError) return { reason: 'udf-error', message: e.message, node_id: e.nodeId, record: e.record }
  if (e instanceof FetchFailed) return { reason: 'fetch-failed', message: e.message, from_worker: e.fromWorker, unreachable: e.unreachable }
  const message = e instanceof Error ? e.message : String(e)
  return { reason: 'task-error', message }
}

async function readTextSplit(path: string, split: { start: number; end: number }, root: Consumer): Promise<number> {
  const file = Bun.file(path)
  const cutter = new LineCutter(split)
  let records = 0
  let pos = cutter.readFrom
  const size = file.size
  while (!cutter.done && pos < size) {
    const chunk = await file.slice(pos, Math.min(size, pos + READ_CHUNK_BYTES)).bytes()
    pos += chunk.length
    const lines = cutter.push(chunk)
    if (lines.length > 0) { records += lines.length; root.push(lines) }
  }
  if (!cutter.done) {
    const last = cutter.finish()
    if (last.length > 0) { records += last.length; root.push(last) }
  }
  return records
}

async function reduceShuffle(spec: TaskSpec, env: ThreadEnv, root: Consumer): Promise<{ records: number; bytes: number }> {
  if (spec.stage.root.kind !== 'shuffle') throw new Error('not a shuffle stage')
  const reducer = new ShuffleReducer(spec.stage.root.node, spec.params)
  let records = 0
  let bytes = 0
  const fetches: Promise<void>[] = []
  for (const input of spec.shuffle_inputs) {
    const byAddress = new Map<string, { worker: string; attempts: string[] }>()
    for (const m of input.map_outputs) {
      const entry = byAddress.get(m.address) ?? { worker: m.worker_id, attempts: [] }
      entry.attempts.push(m.attempt_id)
      byAddress.set(m.address, entry)
    }
    // One request per peer for all its blocks, all peers at once.
    for (const [address, { worker, attempts }] of byAddress) {
      fetches.push((async () => {
        const body = { job_id: spec.job_id, shuffle_id: input.shuffle_id, reduce_partition: spec.partition, attempts }
        let res: Response
        try {
          res = await fetch(`http://${address}/shuffle_data/fetch`, {
            method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(env.token) }, body: JSON.stringify(body),
          })
        } catch (e) {
          const refused = (e as { code?: unknown }).code === 'ECONNREFUSED'
          throw new FetchFailed(worker, `cannot reach worker ${worker} at ${address} for shuffle ${input.shuffle_id}: ${(e as Error).message}`, refused)
        }
        if (!res.ok || res.body === null) {
          throw new FetchFailed(worker, `worker ${worker} at ${address} answered ${res.status} for shuffle ${input.shuffle_id}: ${await res.text()}`)
        }
        const decoder = new FrameDecoder()
        try {
          for await (const chunk of res.body) {
            bytes += chunk.length
            for (const batch of decoder.push(chunk)) { records += batch.length; reducer.push(batch) }
          }
          decoder.finish()
        } catch (e) {
          if (e instanceof UdfError) throw e
          throw new FetchFailed(worker, `shuffle ${input.shuffle_id} from worker ${worker} broke off: ${(e as Error).message}`)
        }
      })())
    }
  }
  await Promise.all(fetches)
  reducer.emit(root)
  return { records, bytes }
}

function writeBlockFile(path: string, shuffleId: string, parts: readonly Uint8Array[]): BlockFile {
  mkdirSync(dirname(path), { recursive: true })
  const offsets = [0]
  let total = 0
  for (const p of parts) { total += p.length; offsets.push(total) }
  const all = new Uint8Array(total)
  let at = 0
  for (const p of parts) { all.set(p, at); at += p.length }
  writeFileSync(path, all)
  return { shuffle_id: shuffleId, path, offsets }
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
        finish: async () => ({ node_id: node.id, op: 'collect', records: n, values }),
      }
    }
    case 'write_text':
    case 'write_jsonl': {
      // Each attempt writes in its own folder; commitOutputs moves the part into place only when
      // the master says this attempt is the one that commits the partition.
      const temp = join(env.dataDir, node.path!, '_temporary', safe(spec.attempt_id), partName(spec.partition))
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
