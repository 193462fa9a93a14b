// Worker-facing routes: heartbeats and the registry (CONTRACT section 3), task reports and the
// output-commit question asked by task threads.
import { Elysia, t } from 'elysia'
import { ErrorBody } from '../../../api/errors'
import { Heartbeat, HeartbeatAck, WorkerInfo } from '../../../api/heartbeat'
import { CommitAnswer, CommitRequest, TaskReport, TaskReports } from '../../../api/tasks'
import type { MasterCore } from '../core'

export const clusterRoutes = (m: MasterCore) =>
  new Elysia()
    .post('/heartbeat', ({ body }) => m.heartbeat(body),
      { body: Heartbeat, response: { 200: HeartbeatAck, 400: ErrorBody }, detail: { summary: 'a worker\'s heartbeat; the first one registers it', tags: ['workers'] } })
    .get('/workers', () => m.workerList(),
      { response: { 200: t.Array(WorkerInfo) }, detail: { summary: 'the worker registry', tags: ['workers'] } })
    .post('/tasks/report', ({ body }) => m.report(body),
      { body: TaskReport, response: { 200: t.Object({ ok: t.Literal(true) }) }, detail: { summary: 'a task attempt ended (internal, from workers)', tags: ['internal'] } })
    .post('/tasks/reports', ({ body }) => m.reports(body.reports),
      { body: TaskReports, response: { 200: t.Object({ ok: t.Literal(true) }) }, detail: { summary: 'several task attempts ended (internal, from workers)', tags: ['internal'] } })
    .post('/tasks/commit', ({ body }) => m.commit(body.attempt_id),
      { body: CommitRequest, response: { 200: CommitAnswer }, detail: { summary: 'may this attempt move its output into place? (internal)', tags: ['internal'] } })
