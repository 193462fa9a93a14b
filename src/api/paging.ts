// Paging of the master's lists (GET /jobs, GET /jobs/:id/tasks): query schemas, cursors and the
// response headers. The body stays a plain array (CONTRACT section 2 and 5); where the list goes
// on is said in headers, as GitHub's API does:
//   X-Next-Cursor   pass it as `before` (jobs) or `after` (tasks) for the next page; absent on the last
//   X-Prev-Cursor   pass it as `after` (jobs) or `before` (tasks) for the page before; absent on the first
//   Link            the same two as URLs, rel="next" and rel="prev" (RFC 8288)
//   X-Total-Count   how many items the whole list holds (with the same filters)
import { t, type Static } from 'elysia'
import { AttemptState, JobState } from './jobs'

export const MAX_PAGE = 1000
/** GET /jobs without `limit`: the newest 100. */
export const DEFAULT_JOBS_PAGE = 100
/** GET /jobs/:id/tasks without `limit`: the first 1 000 attempts. */
export const DEFAULT_TASKS_PAGE = 1000

export const NEXT_CURSOR = 'x-next-cursor'
export const PREV_CURSOR = 'x-prev-cursor'
export const TOTAL_COUNT = 'x-total-count'

/** A job's place in the list (its submission number), as X-Next-Cursor and X-Prev-Cursor give it. */
const JobCursor = (description: string) => t.String({ pattern: '^[0-9]{1,15}$', description })
/** An attempt's place in the list: `stage.partition.attempt`. */
const TaskCursor = (description: string) => t.String({ pattern: '^[0-9]{1,9}\\.[0-9]{1,9}\\.[0-9]{1,9}$', description })
const Limit = (dflt: number) => t.Integer({ minimum: 1, maximum: MAX_PAGE, default: dflt, description: `at most this many (1 to ${MAX_PAGE}; default ${dflt})` })

export const JobsQuery = t.Object({
  state: t.Optional(JobState),
  limit: t.Optional(Limit(DEFAULT_JOBS_PAGE)),
  before: t.Optional(JobCursor('jobs submitted before this cursor (older): X-Next-Cursor')),
  after: t.Optional(JobCursor('jobs submitted after this cursor (newer): X-Prev-Cursor')),
})
export type JobsQuery = Static<typeof JobsQuery>

export const TasksQuery = t.Object({
  stage: t.Optional(t.Integer({ minimum: 0, description: 'only attempts of this stage' })),
  state: t.Optional(AttemptState),
  limit: t.Optional(Limit(DEFAULT_TASKS_PAGE)),
  after: t.Optional(TaskCursor('attempts after this `stage.partition.attempt`: X-Next-Cursor')),
  before: t.Optional(TaskCursor('attempts before this `stage.partition.attempt`: X-Prev-Cursor (`S.0.0`, S the number of stages, gives the last page)')),
})
export type TasksQuery = Static<typeof TasksQuery>

/** A page of a list and where the list goes on. */
export type Page<T> = { items: T[]; next: string | null; prev: string | null; total: number }

export const jobCursor = (seq: number): string => String(seq)
export const parseJobCursor = (c: string): number => Number(c)

export const taskCursor = (x: { stage_id: number; partition: number; attempt: number }): string => `${x.stage_id}.${x.partition}.${x.attempt}`
export function parseTaskCursor(c: string): [number, number, number] {
  const [s, p, a] = c.split('.').map(Number)
  return [s ?? 0, p ?? 0, a ?? 0]
}
