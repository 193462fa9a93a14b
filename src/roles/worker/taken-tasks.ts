// Tasks that came with the answer to a report (ReportsAnswer.tasks): each goes to the driver as if
// pushed by POST /tasks, checked against the same schema first. One that is malformed, or that the
// driver refuses (a job that has ended here, an incarnation this worker no longer has), is reported
// at once as interrupted: the master then runs it again (uncounted, bounded: retries.ts) instead of
// waiting until a heartbeat shows it missing.
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { TaskSpec, type TaskReport } from '../../api/tasks'

const checkSpec = TypeCompiler.Compile(TaskSpec)
const noMetrics = { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 }

export type TakeDeps = {
  submit: (spec: TaskSpec) => { code: string; message: string } | null
  report: (r: TaskReport) => void
  workerId: () => string
  log: (msg: Record<string, unknown>) => void
}

export function takeTasks(tasks: readonly unknown[], d: TakeDeps): void {
  for (const t of tasks) {
    if (!checkSpec.Check(t)) {
      const attempt = (t as { attempt_id?: unknown } | null)?.attempt_id
      const incarnation = (t as { incarnation?: unknown } | null)?.incarnation
      d.log({ level: 'error', cause: 'task-malformed', message: `the master sent a task this worker cannot read: ${[...checkSpec.Errors(t)].slice(0, 3).map(e => `${e.path} ${e.message}`).join('; ')}` })
      if (typeof attempt === 'string' && typeof incarnation === 'string') d.report(refusal(d.workerId(), attempt, incarnation, 'the task spec did not match this worker\'s schema'))
      continue
    }
    const refused = d.submit(t)
    if (refused !== null) d.report(refusal(d.workerId(), t.attempt_id, t.incarnation, `${refused.code}: ${refused.message}`))
  }
}

const refusal = (worker: string, attempt: string, incarnation: string, message: string): TaskReport => ({
  worker_id: worker, incarnation, attempt_id: attempt, state: 'FAILED', metrics: noMetrics, shuffle_outputs: [], sinks: [],
  failure: { reason: 'interrupted', message: `the worker did not take the task: ${message}` },
})
