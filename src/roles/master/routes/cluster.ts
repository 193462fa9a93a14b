// Worker-facing routes: heartbeats and the registry (CONTRACT section 3), task reports and the
// output-commit question asked by task threads.
import { Elysia, t } from 'elysia'
import { ErrorBody } from '../../../api/errors'
import { Heartbeat, HeartbeatAck, WorkerInfo } from '../../../api/heartbeat'
import { CommitAnswer, CommitRequest, ReportsAnswer, TaskReport, TaskReports } from '../../../api/tasks'
import type { MasterCore } from '../core'

export const clusterRoutes = (m: MasterCore) =>
  new Elysia()
    .post('/heartbeat', ({ body }) => m.heartbeat(body),
      { body: Heartbeat, response: { 200: HeartbeatAck, 400: ErrorBody }, detail: { summary: 'a worker\'s heartbeat; the first one registers it', tags: ['workers'] } })
    .get('/workers', () => m.workerList(),
      { response: { 200: t.Array(WorkerInfo) }, detail: { summary: 'the worker registry', tags: ['workers'] } })
    .post('/tasks/report', ({ body }) => m.report(body),
      { body: TaskReport, response: { 200: t.Object({ ok: t.Literal(true) }) }, detail: { summary: 'a task attempt ended (internal, from workers)', tags: ['internal'] } })
    .post('/tasks/reports', async ({ body }) => {
      const answer = await m.reports(body.reports, body.take_tasks === true)
      // The specs are JSON already (as a launch request would carry them): joined, not parsed again.
      const text = answer.tasks === undefined ? '{"ok":true}' : `{"ok":true,"tasks":[${answer.tasks.join(',')}]}`
      return new Response(text, { headers: { 'content-type': 'application/json' } })
    }, { body: TaskReports, response: { 200: ReportsAnswer }, detail: { summary: 'several task attempts ended (internal, from workers); with take_tasks, the answer carries the tasks launched on this worker meanwhile', tags: ['internal'] } })
    .post('/tasks/commit', ({ body }) => m.commit(body.attempt_id),
      { body: CommitRequest, response: { 200: CommitAnswer }, detail: { summary: 'may this attempt move its output into place? (internal)', tags: ['internal'] } })
