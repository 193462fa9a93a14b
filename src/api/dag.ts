// A job's graph for people (the web UI): the logical DAG of its request, and the physical plan
// the master cut from it, stage by stage, with the edges between stages (CONTRACT section 4 gives
// the request; this is read-only and derived from it).
import { t, type Static } from 'elysia'

export const DagNode = t.Object({
  id: t.String(),
  op: t.String(),
  inputs: t.Array(t.String()),
  /** the stages that compute this node: one, or several after a union (and in a sort's sample stages) */
  stage_ids: t.Array(t.Integer()),
  /** what the node does, for a tooltip: its function source, path or options, cut to 300 characters */
  detail: t.Union([t.String(), t.Null()]),
})
export type DagNode = Static<typeof DagNode>

export const DagStage = t.Object({
  stage_id: t.Integer(),
  /** a source stage reads input splits; a shuffle stage reads the partitions of a wide node; a
   *  cached stage reads the kept partitions of a node with `cache` */
  kind: t.Union([t.Literal('source'), t.Literal('shuffle'), t.Literal('cached')]),
  /** a sort's sample stage: the sort node whose range bounds it samples */
  sample_of: t.Union([t.String(), t.Null()]),
  depends_on: t.Array(t.Integer()),
  /** the nodes this stage computes, its root first, each after its inputs */
  nodes: t.Array(t.Object({ id: t.String(), op: t.String(), inputs: t.Array(t.String()) })),
})
export type DagStage = Static<typeof DagStage>

export const DagEdge = t.Object({
  from_stage: t.Integer(),
  from: t.String(),
  to_stage: t.Integer(),
  to: t.String(),
  /** narrow: inside a stage; shuffle: map output of one stage read by another; broadcast: a join's
   *  small side, written whole once and held by every task of the join's stage; bounds: a sort's
   *  sample sets the ranges its writer stage sends records to; dependency: any other wait */
  kind: t.Union([t.Literal('narrow'), t.Literal('shuffle'), t.Literal('broadcast'), t.Literal('bounds'), t.Literal('dependency')]),
})
export type DagEdge = Static<typeof DagEdge>

export const JobDag = t.Object({
  job_id: t.String(),
  nodes: t.Array(DagNode),
  stages: t.Array(DagStage),
  edges: t.Array(DagEdge),
})
export type JobDag = Static<typeof JobDag>
