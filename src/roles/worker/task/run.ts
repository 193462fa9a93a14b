// Runs one task attempt inside a task thread: reads its input (a split of a file, or shuffle blocks
// fetched from peers), pushes it through the stage pipeline, writes shuffle blocks and sink output.
// Record work lives in src/engine; this folder only does the I/O around it.
import { rmSync } from 'node:fs'
import { PeerClient } from '../../../api/peers'
import type { SinkOutput, TaskSpec } from '../../../api/tasks'
import { buildStagePipeline } from '../../../engine/pipeline'
import { ShuffleWriter } from '../../../engine/shuffle'
import { SharedBudget } from '../../../engine/spill/budget'
import { mergeCollectBytes, type SpillContext } from '../../../engine/spill/external'
import { attemptDir, shuffleDir } from '../layout'
import { partitionSizes, type BlockFile, type ThreadEnv, type ThreadResult } from '../thread-protocol'
import { toFailure } from './failures'
import { fetchBroadcasts, readCached, reduceShuffle } from './fetch'
import { CacheWriter } from '../cache/writer'
import { readSourceSplit } from './inputs'
import { FileRunStore } from './run-store'
import { commitOutputs, openSink, type SinkRun } from './sinks'
import { youngCollector } from './young-gc'
import { pathName } from '../layout'
import { datasetOwner } from '../../../api/dataset-owner'

/** `lane`: this thread's counter in the worker's shared budget (see engine/spill/budget.ts). */
export async function runTask(spec: TaskSpec, env: ThreadEnv, lane?: number): Promise<ThreadResult> {
  const metrics = { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 }
  const writers: ShuffleWriter[] = []
  const caches: CacheWriter[] = []
  const sinks: SinkRun[] = []
  const temps: string[] = []
  const peers = new PeerClient(env.token)
  // No output may reach the work dir: judged again right before each write and rename.
  const own = [{ path: env.workDir, what: "the worker's work dir (--work-dir)" }]
  // Every buffer of this task reserves from the worker's shared budget; past it, data goes to
  // the work dir, and so does a task told of memory pressure (the worker's resident size past its
  // mark). Map outputs are segment files of the shuffle, kept until the job ends; what a
  // reduce spills is this attempt's alone, in its own folder, removed when it ends.
  const budget = new SharedBudget(env.budget, env.spillAtBytes, env.floorBytes, lane, env.pressure)
  const onSpill = (bytes: number): void => { metrics.spilled_bytes += bytes }
  const scratch = attemptDir(env.workDir, spec.job_id, spec.attempt_id)
  // A full collection after a spill returns the spilled buffers' memory at once; JSC on a large
  // machine would otherwise let the heap grow far past the budget before collecting.
  const afterSpill = (): void => Bun.gc(true)
  const collectEveryBytes = mergeCollectBytes(env.spillAtBytes)
  // One count of the bytes this task writes to runs and fetches, paced young collections of its heap.
  const moved = youngCollector()
  const spillIn = (dir: string): SpillContext => ({ store: new FileRunStore(dir, pathName(spec.attempt_id), moved), budget, onSpill, afterSpill, collectEveryBytes })
  const fetcher = { peers, spillAtBytes: env.spillAtBytes, fetched: moved }
  try {
    const read = { records: 0, bytes: 0 }
    const broadcasts = await fetchBroadcasts(spec, fetcher, budget, read)
    metrics.shuffle_bytes_read = read.bytes
    const root = buildStagePipeline(spec.stage, spec.params, {
      shuffle: w => {
        if (w.cache !== undefined) {
          // A persisted block lives in its dataset's folder, which the job's end does not remove.
          const owner = w.persist === undefined ? spec.job_id : w.owner ?? datasetOwner(spec.job_id, w.persist)
          const c = new CacheWriter(w, new FileRunStore(shuffleDir(env.workDir, owner, w.shuffle_id), pathName(spec.attempt_id), moved), budget)
          caches.push(c)
          return c
        }
        const s = new ShuffleWriter(w, spec.params, spillIn(shuffleDir(env.workDir, spec.job_id, w.shuffle_id)), spec.range_bounds?.[w.shuffle_id])
        writers.push(s)
        return s
      },
      sink: node => { const s = openSink(node, spec, env.dataDir, temps, own); sinks.push(s); return s },
      broadcast: id => broadcasts.get(id)!,
    })
    if (spec.stage.root.kind === 'source') {
      if (spec.split === null) throw new Error('a source task needs a split')
      metrics.records_in = await readSourceSplit(spec.stage.root.node, spec.split, env.dataDir, env.workerId, env.spillAtBytes, root)
    } else if (spec.stage.root.kind === 'cached') {
      const read = await readCached(spec, fetcher, root)
      metrics.records_in = read.records
      metrics.shuffle_bytes_read += read.bytes
    } else {
      const reduced = await reduceShuffle(spec, fetcher, root, spillIn(scratch))
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
    for (const c of caches) {
      const block = c.finish()
      const bytes = partitionSizes(block)[0] ?? 0
      if (c.persist !== undefined) {
        block.owner = c.persist.owner ?? datasetOwner(spec.job_id, c.persist.name)
        outputs.push({ node_id: c.persist.nodeId, op: 'persist', records: c.records, bytes, kept: block.cache?.memory !== undefined ? 'memory' : 'disk' })
      }
      blocks.push(block)
      metrics.shuffle_bytes_written += bytes
      metrics.records_out += c.records
    }
    for (const s of sinks) {
      const o = await s.finish()
      if (o.op !== 'sample') metrics.records_out += o.records
      outputs.push(o)
    }
    await commitOutputs(spec, peers, env.masterUrl, env.workerId, temps, env.dataDir, own)
    return { attempt_id: spec.attempt_id, state: 'SUCCEEDED', metrics, blocks, sinks: outputs }
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true })
    return { attempt_id: spec.attempt_id, state: 'FAILED', metrics, blocks: [], sinks: [], failure: toFailure(e) }
  } finally {
    budget.releaseAll()
    rmSync(scratch, { recursive: true, force: true })
    // A task that spilled, or one under a small budget, gives its heap back before the next task.
    // Not every task: a full collection costs about a millisecond even on a small heap, which
    // dominates tiny tasks.
    if (metrics.spilled_bytes > 0 || env.spillAtBytes < 256 * 1024 * 1024) Bun.gc(true)
  }
}
