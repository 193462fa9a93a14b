// job.schema.json: the JSON Schema of a job file, from the same TypeBox objects the master
// validates with, so an editor's completion and the master's 400s agree. A job file points at it
// with "$schema". `bun src/api/job-schema.ts` rewrites the copy at the repository root.
import { JobRequest } from './jobs'

export function jobSchemaDocument(): Record<string, unknown> {
  // JSON round trip: drops TypeBox's symbol keys and leaves plain JSON Schema.
  const body = JSON.parse(JSON.stringify(JobRequest)) as Record<string, unknown>
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', ...body }
}

export const jobSchemaText = (): string => `${JSON.stringify(jobSchemaDocument(), null, 2)}\n`

if (import.meta.main) {
  const target = new URL('../../job.schema.json', import.meta.url)
  await Bun.write(target, jobSchemaText())
  console.log(`wrote ${target.pathname}`)
}
