// GET /job.schema.json: the JSON Schema of a job file, for editors ("$schema") and generated
// clients. It holds no data, so it is served without the token, as the UI's assets are.
import { Elysia } from 'elysia'
import { jobSchemaText } from '../../../api/job-schema'

export const schemaRoutes = () => {
  const text = jobSchemaText()
  return new Elysia()
    .get('/job.schema.json', () => new Response(text, { headers: { 'content-type': 'application/schema+json' } }),
      { detail: { summary: 'the JSON Schema of a job file (the body of POST /jobs)', tags: ['jobs'] } })
}
