// A task's sinks: count, collect, a sort's key sample, and the write sinks, which write into
// OUT/_temporary/<attempt>/ and move their part into place only when the master lets this attempt
// commit its partition.
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import type { NodeSpec } from '../../../api/jobs'
import { PeerError, type PeerClient } from '../../../api/peers'
import type { SinkOutput, TaskSpec } from '../../../api/tasks'
import { KeySampler, keysOf, sampleSizePerTask, sortKeyFunction } from '../../../engine/operators/sort'
import type { Consumer } from '../../../engine/pipeline'
import { pathName } from '../layout'
import { checkOutputFolder, type Reserved } from '../listing'
import { FatalTaskError, Interrupted } from './failures'

const WRITE_FLUSH_CHARS = 1 << 20

/** The values travel in the task's report, whose body is capped at 16 MiB; counted in UTF-8 bytes,
 *  as the body is (a character may take up to three). */
export const COLLECT_TASK_LIMIT_BYTES = 15 * 1024 * 1024

export type SinkRun = Consumer & { finish(): Promise<SinkOutput> }

const partName = (partition: number): string => `part-${String(partition).padStart(5, '0')}`

/** `own`: paths no output may reach (the worker's work dir), checked with the output's real path. */
export function openSink(node: NodeSpec, spec: TaskSpec, dataDir: string, temps: string[], own: readonly Reserved[] = []): SinkRun {
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
          if (Buffer.byteLength(JSON.stringify(values), 'utf8') > COLLECT_TASK_LIMIT_BYTES) {
            throw new FatalTaskError(node.id, `collect "${node.id}" gathered more than ${COLLECT_TASK_LIMIT_BYTES >> 20} MiB in one partition: write the result with write_text or write_jsonl instead`)
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
      const temp = join(dataDir, node.path!, '_temporary', pathName(spec.attempt_id), partName(part))
      // A link made after submit is not written through: the folder is judged again now.
      checkOutputFolder(dataDir, node.path!, own)
      mkdirSync(dirname(temp), { recursive: true })
      temps.push(temp)
      const writer = Bun.file(temp).writer({ highWaterMark: WRITE_FLUSH_CHARS })
      const asJson = node.op === 'write_jsonl'
      let n = 0
      const sink: SinkRun & { pushLines?(bytes: Uint8Array, count: number): void } = {
        push(b) {
          let text = ''
          for (let i = 0; i < b.length; i++) {
            const r = b[i]
            text += (!asJson && typeof r === 'string' ? r : JSON.stringify(r)) + '\n'
          }
          n += b.length
          writer.write(text)
        },
        finish: async () => { await writer.end(); return { node_id: node.id, op: node.op, records: n, part, bytes: statSync(temp).size } },
      }
      // A sort held as bytes hands its lines on as bytes (builtins/operators.ts): written as they are.
      // The writer writes them or copies them into its buffer before returning, so the sort may
      // reuse their memory.
      if (!asJson) sink.pushLines = (bytes, count) => { n += count; writer.write(bytes) }
      return sink
    }
    default:
      throw new Error(`op ${node.op} is not a sink`)
  }
}

/**
 * Asks the master whether this attempt commits its partition, and if so moves its parts into
 * place. The question is asked again while the master cannot answer (a restart); an attempt that
 * could not ask at all is interrupted, which is not the task's fault.
 */
export async function commitOutputs(spec: TaskSpec, peers: PeerClient, masterUrl: string, workerId: string, temps: readonly string[], dataDir: string, own: readonly Reserved[] = []): Promise<void> {
  if (temps.length === 0) return
  let commit: boolean
  try {
    commit = await peers.commit(masterUrl, spec.attempt_id, workerId)
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true })
    if (e instanceof PeerError && e.transient) throw new Interrupted(`attempt ${spec.attempt_id} could not ask the master whether to commit its output: ${e.message}`)
    throw e
  }
  if (!commit) {
    for (const t of temps) rmSync(t, { force: true })
    throw new Error(`the master did not let attempt ${spec.attempt_id} commit its output (another attempt did)`)
  }
  for (const t of temps) {
    // temp = OUT/_temporary/ATTEMPT/part-N → OUT/part-N; rename is atomic within one file system.
    const target = join(dirname(dirname(dirname(t))), t.slice(t.lastIndexOf('/') + 1))
    checkOutputFolder(dataDir, relative(dataDir, dirname(target)), own)
    renameSync(t, target)
    rmSync(dirname(t), { recursive: true, force: true })
  }
}
