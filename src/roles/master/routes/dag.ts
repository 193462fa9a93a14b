// GET /jobs/:id/dag: a job's logical DAG and its stages with the edges between them, for the web
// UI. Reads the job's request and plan (the live job, else the store); changes nothing.
import { Elysia, t } from 'elysia'
import type { JobId } from '../../../api/ids'
import { ErrorBody } from '../../../api/errors'
import { JobDag, type DagEdge, type DagNode, type DagStage } from '../../../api/dag'
import type { JobRequest, NodeSpec } from '../../../api/jobs'
import type { StagePlan } from '../../../api/tasks'
import type { MasterCore } from '../core'
import type { MasterState } from '../state'
import type { Store, StoredPlan } from '../store'

const DETAIL_CHARS = 300

export const dagRoutes = (m: MasterCore, store: Store, state: MasterState) =>
  new Elysia({ prefix: '/jobs' })
    .get('/:id/dag', ({ params }) => {
      m.jobStatus(params.id) // 404 for an unknown job
      const live = state.jobs.get(params.id as JobId)
      if (live !== undefined) return jobDag(params.id, live.request, live.stages.map(s => s.plan))
      const row = store.job(params.id as JobId)
      const plan = row?.plan ? (JSON.parse(row.plan) as StoredPlan).stages.map(s => s.plan) : []
      return jobDag(params.id, row ? JSON.parse(row.request) as JobRequest : { nodes: [] }, plan)
    }, {
      params: t.Object({ id: t.String({ minLength: 1, maxLength: 128 }) }),
      response: { 200: JobDag, 404: ErrorBody },
      detail: { summary: 'a job\'s DAG: nodes with their inputs and stages, and the edges between stages (for the web UI)', tags: ['jobs'] },
    })

const inputsOf = (n: Pick<NodeSpec, 'input' | 'inputs'>): string[] => n.inputs ?? (n.input === undefined ? [] : [n.input])

/** Pure: the view of a request and its stage plans. */
export function jobDag(jobId: string, request: Pick<JobRequest, 'nodes'>, plans: readonly StagePlan[]): JobDag {
  const stagesOf = new Map<string, number[]>()
  const stages: DagStage[] = plans.map(p => {
    const nodes = [p.root.node, ...p.nodes]
    for (const n of nodes) {
      const list = stagesOf.get(n.id) ?? []
      if (!list.includes(p.stage_id)) list.push(p.stage_id)
      stagesOf.set(n.id, list)
    }
    return {
      stage_id: p.stage_id, kind: p.root.kind, sample_of: p.sample_of ?? null, depends_on: p.depends_on,
      nodes: nodes.map(n => ({ id: n.id, op: n.op, inputs: inputsOf(n) })),
    }
  })
  const nodes: DagNode[] = request.nodes.map(n => ({
    id: n.id, op: n.op, inputs: inputsOf(n), stage_ids: stagesOf.get(n.id) ?? [], detail: detailOf(n),
  }))
  return { job_id: jobId, nodes, stages, edges: edgesOf(plans) }
}

function edgesOf(plans: readonly StagePlan[]): DagEdge[] {
  const edges: DagEdge[] = []
  const byId = new Map(plans.map(p => [p.stage_id, p]))
  for (const p of plans) {
    // Inside a stage: each node from those of its inputs computed in the same stage (after a
    // union, the other inputs are computed in other stages that run the union too).
    const here = new Set([p.root.node.id])
    for (const n of p.nodes) {
      for (const i of inputsOf(n)) if (here.has(i)) edges.push({ from_stage: p.stage_id, from: i, to_stage: p.stage_id, to: n.id, kind: 'narrow' })
      here.add(n.id)
    }
  }
  for (const r of plans) {
    // Across stages, by what the reading stage waits for: the shuffles its root reads, the small
    // sides of its broadcast joins, and a sort's sampled ranges (its writers wait for the sample).
    for (const d of r.depends_on) {
      const p = byId.get(d)
      if (p === undefined) continue
      const before = edges.length
      for (const w of p.shuffle_writes) {
        const reads = r.root.kind === 'shuffle' ? r.root.shuffle_ids.includes(w.shuffle_id) : r.root.kind === 'cached' && r.root.cache_id === w.shuffle_id
        if (reads) {
          edges.push({ from_stage: p.stage_id, from: w.from, to_stage: r.stage_id, to: r.root.node.id, kind: 'shuffle' })
        }
        for (const b of r.broadcasts ?? []) {
          if (b.shuffle_id === w.shuffle_id) edges.push({ from_stage: p.stage_id, from: w.from, to_stage: r.stage_id, to: b.node_id, kind: 'broadcast' })
        }
      }
      const last = p.nodes[p.nodes.length - 1]
      if (p.sample_of !== undefined && last !== undefined) {
        for (const w of r.shuffle_writes) {
          if (w.node.id === p.sample_of) edges.push({ from_stage: p.stage_id, from: last.id, to_stage: r.stage_id, to: w.from, kind: 'bounds' })
        }
      }
      // A dependency none of these explains is still drawn: the page never hides why a stage waits.
      if (edges.length === before) {
        edges.push({ from_stage: p.stage_id, from: (last ?? p.root.node).id, to_stage: r.stage_id, to: r.root.node.id, kind: 'dependency' })
      }
    }
  }
  return edges
}

function detailOf(n: NodeSpec): string | null {
  const parts: string[] = []
  if (n.path !== undefined) parts.push(n.path)
  if (n.fn !== undefined) parts.push(n.fn)
  if (n.key !== undefined) parts.push(`key ${n.key}`)
  if (n.how !== undefined) parts.push(`how ${n.how}`)
  if (n.descending) parts.push('descending')
  if (n.partitions !== undefined) parts.push(`${n.partitions} partitions`)
  if (n.limit !== undefined) parts.push(`limit ${n.limit}`)
  if (n.cache !== undefined) parts.push(`cache ${n.cache}`)
  const text = parts.join(' · ')
  return text === '' ? null : text.length > DETAIL_CHARS ? `${text.slice(0, DETAIL_CHARS - 1)}…` : text
}
