// Turns a validated request into a runnable JobRun: stages from the DAG, input splits from a
// worker's listing (the master never opens data files), one PENDING task per split or partition.
import { taskIdOf, type JobId } from '../../api/ids'
import type { JobRequest, NodeSpec, Op } from '../../api/jobs'
import type { ListAnswer, ListRequest } from '../../api/tasks'
import { ApiError, type ErrorCode } from '../../api/errors'
import type { ValidJob } from '../../engine/dag'
import { DEFAULT_BROADCAST_BYTES, numberSinkParts, planStages, setSplitCount } from '../../engine/plan'
import { planSplits, DEFAULT_SPLIT_BYTES } from '../../engine/splits'
import type { JobRun, StageRun } from './state'
import { indexTasks } from './task-index'

export function listingRequest(v: ValidJob): ListRequest {
  const req: ListRequest = { inputs: [], outputs: [] }
  for (const n of v.nodes.values()) {
    // allow_empty: a source field of the job schema (read here whether or not the schema lists it yet)
    const allowEmpty = (n as { allow_empty?: unknown }).allow_empty === true
    if (n.op === 'read_text' || n.op === 'read_jsonl' || n.op === 'read_csv') req.inputs.push({ node_id: n.id, path: n.path!, ...(allowEmpty ? { allow_empty: true } : {}) })
    if (n.op === 'write_text' || n.op === 'write_jsonl') req.outputs.push({ node_id: n.id, path: n.path!, overwrite: n.overwrite === true })
  }
  return req
}

/** A listing problem is the user's to fix: a 400 naming the node and path. */
export function checkListing(answer: ListAnswer): void {
  const first = answer.errors[0]
  if (first !== undefined) throw new ApiError(first.code as ErrorCode, first.message, { node_id: first.node_id })
}

export function buildJobRun(o: {
  id: JobId; seq: number; request: JobRequest; valid: ValidJob; listing: ListAnswer; defaultPartitions: number; nowMs: number; splitBytes?: number
}): JobRun {
  const sourceBytes = new Map(o.listing.inputs.map(i => [i.node_id, i.files.reduce((n, f) => n + f.size, 0)]))
  const plans = planStages(o.valid, o.request.partitions ?? o.defaultPartitions,
    { sourceBytes, maxBytes: o.request.broadcast_bytes ?? DEFAULT_BROADCAST_BYTES })
  const stages: StageRun[] = plans.map(plan => {
    let splits: StageRun['splits'] = []
    if (plan.root.kind === 'source') {
      const files = o.listing.inputs.find(i => i.node_id === plan.root.node.id)?.files ?? []
      splits = planSplits(files, splitBytesOf(plan.root.node, o.splitBytes ?? o.request.split_bytes)).map(s => ({ path: s.path, start: s.start, end: s.end, file_size: s.fileSize }))
      setSplitCount(plan, splits.length)
    }
    const tasks = Array.from({ length: plan.partitions }, (_, p) => ({
      id: taskIdOf(o.id, plan.stage_id, p), stage: plan.stage_id, partition: p, state: 'PENDING' as const,
      attempts: 0, failures: 0, current: null, output: null, sinks: [], committer: null,
    }))
    return { plan, state: 'WAITING', tasks, index: indexTasks(tasks), splits, finalCounts: null }
  })
  numberSinkParts(plans)
  const outputs = [...o.valid.nodes.values()].filter(n => n.op === 'write_text' || n.op === 'write_jsonl').map(n => n.path!)
  return {
    id: o.id, seq: o.seq, name: o.request.name ?? 'job', state: 'QUEUED', request: o.request, params: o.request.params ?? {},
    maxAttempts: o.request.max_task_attempts ?? 4, stages, outputs, submittedMs: o.nowMs, startedMs: null, finishedMs: null,
    error: null, result: null, finalizing: false,
  }
}

/** read_csv with `multiline` reads each file whole in one task: a quoted field may hold a line
 *  break, so no byte offset inside the file is known to start a row. */
function splitBytesOf(source: NodeSpec, splitBytes: number | undefined): number {
  if (source.op === 'read_csv' && source.multiline === true) return Number.MAX_SAFE_INTEGER
  return splitBytes ?? DEFAULT_SPLIT_BYTES
}

export const overwrittenOutputs = (v: ValidJob): string[] =>
  [...v.nodes.values()].filter(n => (n.op as Op) !== 'collect' && n.overwrite === true && n.path !== undefined).map(n => n.path!)
