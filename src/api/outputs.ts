// The catalog of outputs as users see it (GET /outputs): which worker holds each part of an
// output a job wrote, with its size and records (CONTRACT section 6).
import { t, type Static } from 'elysia'

export const OutputPartInfo = t.Object({
  part: t.Integer(),
  /** the part file, relative to the data dir */
  file: t.String(),
  bytes: t.Integer(),
  records: t.Integer(),
  /** the workers that hold a copy that counts (one per disk; the first wrote it) */
  workers: t.Array(t.String()),
})
export type OutputPartInfo = Static<typeof OutputPartInfo>

export const OutputInfo = t.Object({
  path: t.String(),
  job_id: t.String(),
  written_at: t.String({ description: 'ISO-8601: when the job marked it complete' }),
  replicas: t.Integer(),
  parts: t.Integer(),
  bytes: t.Integer(),
  records: t.Integer(),
  /** each part (GET /outputs?path=P only) */
  files: t.Optional(t.Array(OutputPartInfo)),
})
export type OutputInfo = Static<typeof OutputInfo>

export const OutputsQuery = t.Object({
  path: t.Optional(t.String({ description: 'one output, with its parts; without it, every output the master knows, without their parts' })),
})
