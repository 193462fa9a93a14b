// Cuts a validated DAG into stages at shuffle boundaries. Pure.
//
// A stage starts at a source (one task per input split) or at a wide node (one task per reduce
// partition) and takes every narrow node and sink reachable without crossing another wide node.
// A wide node's map side (partitioning, map-side combine) runs at the end of its input's stage as a
// shuffle write. A node feeding several consumers in one stage is computed once and fanned out.
import type { NodeSpec, Op } from '../api/jobs'
import type { ShuffleWrite, StagePlan } from '../api/tasks'
import { ApiError } from '../api/errors'
import { SINK_OPS, SOURCE_OPS, WIDE_OPS, type ValidJob } from './dag'

/** Ops this version plans and runs; the validator refuses the others with UNSUPPORTED_OP. */
export const SUPPORTED_OPS: ReadonlySet<Op> = new Set<Op>([
  'read_text', 'map', 'flat_map', 'filter', 'map_values', 'key_by',
  'reduce_by_key', 'group_by_key', 'distinct',
  'write_text', 'write_jsonl', 'collect', 'count',
])

export function planStages(job: ValidJob, defaultPartitions: number): StagePlan[] {
  const stageOf = new Map<string, StagePlan>()
  const stages: StagePlan[] = []
  const newStage = (root: StagePlan['root'], partitions: number): StagePlan => {
    const s: StagePlan = { stage_id: stages.length, root, nodes: [], shuffle_writes: [], sinks: [], depends_on: [], partitions }
    stages.push(s)
    return s
  }
  for (const id of job.order) {
    const node = job.nodes.get(id)!
    const op = node.op as Op
    const inputs = job.inputsOf.get(id) ?? []
    if (SOURCE_OPS.has(op)) {
      // Tasks are counted once the inputs are listed (setSplitCount).
      stageOf.set(id, newStage({ kind: 'source', node }, 0))
    } else if (WIDE_OPS.has(op)) {
      const partitions = node.partitions ?? defaultPartitions
      const shuffleIds = inputs.map((_, side) => inputs.length === 1 ? id : `${id}/${side}`)
      const stage = newStage({ kind: 'shuffle', node, shuffle_ids: shuffleIds }, partitions)
      inputs.forEach((input, side) => {
        const from = stageOf.get(input)!
        const write: ShuffleWrite = { shuffle_id: shuffleIds[side]!, node, from: input, partitions }
        from.shuffle_writes.push(write)
        if (!stage.depends_on.includes(from.stage_id)) stage.depends_on.push(from.stage_id)
      })
      stageOf.set(id, stage)
    } else {
      const stage = stageOfNarrow(node, inputs, stageOf)
      stage.nodes.push(node)
      if (SINK_OPS.has(op)) stage.sinks.push(id)
      stageOf.set(id, stage)
    }
  }
  return stages
}

function stageOfNarrow(node: NodeSpec, inputs: readonly string[], stageOf: ReadonlyMap<string, StagePlan>): StagePlan {
  const stages = new Set(inputs.map(i => stageOf.get(i)!))
  if (stages.size !== 1) {
    throw new ApiError('UNSUPPORTED_OP', `node "${node.id}" (${node.op}) combines inputs from different stages, which this version cannot plan yet`, { node_id: node.id })
  }
  return [...stages][0]!
}

/** A source stage gets one task per split; an empty input gives a stage with no tasks. */
export function setSplitCount(stage: StagePlan, splits: number): void {
  stage.partitions = splits
}

/** Text rendering of a plan, for golden tests and logs. */
export function renderPlan(stages: readonly StagePlan[]): string {
  return stages.map(s => {
    const root = s.root.kind === 'source' ? `source ${s.root.node.id}` : `shuffle ${s.root.node.id}(${s.root.shuffle_ids.join(',')})`
    const writes = s.shuffle_writes.map(w => `${w.from}=>${w.shuffle_id}[${w.partitions}]`)
    return `stage ${s.stage_id} <- [${s.depends_on.join(',')}] ${root} | ${s.nodes.map(n => n.id).join(' ')}` +
      (writes.length ? ` | writes ${writes.join(' ')}` : '') + (s.sinks.length ? ` | sinks ${s.sinks.join(' ')}` : '')
  }).join('\n')
}
