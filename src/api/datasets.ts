// The catalog of persisted datasets as users see it (GET /datasets, CONTRACT section 8): which
// worker holds each partition a persist sink kept, in memory or in its work dir.
import { t, type Static } from 'elysia'

export { datasetOwner } from './dataset-owner'

export const DatasetLocation = t.Object({
  partition: t.Integer(),
  worker_id: t.String(),
  where: t.Union([t.Literal('memory'), t.Literal('disk')]),
})
export type DatasetLocation = Static<typeof DatasetLocation>

export const DatasetInfo = t.Object({
  name: t.String(),
  job_id: t.String({ description: 'the job that persisted it' }),
  level: t.Union([t.Literal('memory'), t.Literal('memory_and_disk'), t.Literal('disk')]),
  state: t.Union([t.Literal('AVAILABLE'), t.Literal('LOST')], { description: 'LOST: some partition is no longer held (its worker died, or a memory-level block was dropped); the next job reading it recomputes them from the lineage, or fails naming them when it cannot' }),
  partitions: t.Integer(),
  records: t.Integer(),
  bytes_memory: t.Integer({ description: 'bytes of its partitions held in workers\' memory' }),
  bytes_disk: t.Integer({ description: 'bytes of its partitions held in workers\' work dirs' }),
  locations: t.Array(DatasetLocation),
  lost_partitions: t.Optional(t.Array(t.Integer(), { description: 'the partitions no longer held' })),
  recomputable: t.Boolean({ description: 'its lineage is known: a lost partition is recomputed by the job that reads it (false for a dataset persisted before lineage was recorded)' }),
  recomputed_partitions: t.Optional(t.Array(t.Integer(), { description: 'the partitions recomputed from the lineage since it was persisted (each by a job that read it lost)' })),
  persisted_at: t.String({ description: 'ISO-8601: when its job succeeded' }),
})
export type DatasetInfo = Static<typeof DatasetInfo>
