// The user-facing job routes (CONTRACT section 2). Routes translate; MasterCore decides.
import { Elysia, t } from 'elysia'
import { ErrorBody } from '../../../api/errors'
import { JobAccepted, JobRequest, JobResult, JobStatus, JobSummary, TaskInfo } from '../../../api/jobs'
import { DEFAULT_JOBS_PAGE, DEFAULT_TASKS_PAGE, JobsQuery, NEXT_CURSOR, PREV_CURSOR, TOTAL_COUNT, TasksQuery, type Page } from '../../../api/paging'
import type { MasterCore } from '../core'

const Id = t.Object({ id: t.String({ minLength: 1, maxLength: 128 }) })

export const jobRoutes = (m: MasterCore) =>
  new Elysia({ prefix: '/jobs' })
    .post('', async ({ body, set }) => { set.status = 201; return m.submit(body) },
      { body: JobRequest, response: { 201: JobAccepted, 400: ErrorBody, 503: ErrorBody }, detail: { summary: 'submit a job', tags: ['jobs'] } })
    .get('', ({ query, request, set }) => paged(m.jobs(query), request.url, set, 'before', 'after'), {
      query: JobsQuery, response: { 200: t.Array(JobSummary), 400: ErrorBody },
      detail: { summary: `job summaries, newest first: ${DEFAULT_JOBS_PAGE} unless \`limit\` says otherwise; X-Next-Cursor (and Link rel="next") gives \`before\` for the next page, X-Total-Count the number of jobs`, tags: ['jobs'] },
    })
    .get('/:id', ({ params }) => m.jobStatus(params.id),
      { params: Id, response: { 200: JobStatus, 404: ErrorBody }, detail: { summary: 'a job\'s status and stages', tags: ['jobs'] } })
    .get('/:id/tasks', ({ params, query, request, set }) => paged(m.tasks(params.id, query), request.url, set, 'after', 'before'), {
      params: Id, query: TasksQuery, response: { 200: t.Array(TaskInfo), 400: ErrorBody, 404: ErrorBody },
      detail: { summary: `a job's task attempts by stage, partition and attempt: the first ${DEFAULT_TASKS_PAGE} unless \`limit\` says otherwise; X-Next-Cursor (and Link rel="next") gives \`after\` for the next page, X-Total-Count the number of attempts`, tags: ['jobs'] },
    })
    .get('/:id/result', ({ params }) => m.result(params.id),
      { params: Id, response: { 200: JobResult, 404: ErrorBody, 409: ErrorBody }, detail: { summary: 'the results of the job\'s sinks', tags: ['jobs'] } })
    .delete('/:id', ({ params }) => m.cancel(params.id),
      { params: Id, response: { 200: JobStatus, 404: ErrorBody }, detail: { summary: 'cancel a job', tags: ['jobs'] } })

/** The page's items as the body; where the list goes on in headers (see api/paging.ts). */
function paged<T>(page: Page<T>, url: string, set: { headers: Record<string, string | number> }, nextParam: string, prevParam: string): T[] {
  set.headers[TOTAL_COUNT] = String(page.total)
  const links: string[] = []
  const link = (cursor: string, param: string, other: string, rel: string) => {
    const u = new URL(url)
    u.searchParams.delete(other)
    u.searchParams.set(param, cursor)
    links.push(`<${u.pathname}${u.search}>; rel="${rel}"`)
  }
  if (page.next !== null) { set.headers[NEXT_CURSOR] = page.next; link(page.next, nextParam, prevParam, 'next') }
  if (page.prev !== null) { set.headers[PREV_CURSOR] = page.prev; link(page.prev, prevParam, nextParam, 'prev') }
  if (links.length > 0) set.headers.link = links.join(', ')
  return page.items
}
