// The user-facing job routes (CONTRACT section 2). Routes translate; MasterCore decides.
import { Elysia, t } from 'elysia'
import { ErrorBody } from '../../../api/errors'
import { JobAccepted, JobRequest, JobResult, JobState, JobStatus, JobSummary, TaskInfo } from '../../../api/jobs'
import type { MasterCore } from '../core'

const Id = t.Object({ id: t.String({ minLength: 1, maxLength: 128 }) })

export const jobRoutes = (m: MasterCore) =>
  new Elysia({ prefix: '/jobs' })
    .post('', async ({ body, set }) => { set.status = 201; return m.submit(body) },
      { body: JobRequest, response: { 201: JobAccepted, 400: ErrorBody, 503: ErrorBody }, detail: { summary: 'submit a job', tags: ['jobs'] } })
    .get('', ({ query }) => m.jobs(query.state),
      { query: t.Object({ state: t.Optional(JobState) }), response: { 200: t.Array(JobSummary) }, detail: { summary: 'job summaries, newest first', tags: ['jobs'] } })
    .get('/:id', ({ params }) => m.jobStatus(params.id),
      { params: Id, response: { 200: JobStatus, 404: ErrorBody }, detail: { summary: 'a job\'s status and stages', tags: ['jobs'] } })
    .get('/:id/tasks', ({ params }) => m.tasks(params.id),
      { params: Id, response: { 200: t.Array(TaskInfo), 404: ErrorBody }, detail: { summary: 'every task attempt of a job', tags: ['jobs'] } })
    .get('/:id/result', ({ params }) => m.result(params.id),
      { params: Id, response: { 200: JobResult, 404: ErrorBody, 409: ErrorBody }, detail: { summary: 'the results of the job\'s sinks', tags: ['jobs'] } })
    .delete('/:id', ({ params }) => m.cancel(params.id),
      { params: Id, response: { 200: JobStatus, 404: ErrorBody }, detail: { summary: 'cancel a job', tags: ['jobs'] } })
