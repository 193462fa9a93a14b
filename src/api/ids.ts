// Branded ids: a WorkerId can never sit in a JobId slot by accident. Cast only in parsers and tests.
import { t } from 'elysia'

export type JobId = string & { readonly __brand: 'JobId' }
export type TaskId = string & { readonly __brand: 'TaskId' }
export type AttemptId = string & { readonly __brand: 'AttemptId' }
export type WorkerId = string & { readonly __brand: 'WorkerId' }
export type NodeId = string & { readonly __brand: 'NodeId' }
export type ShuffleId = string & { readonly __brand: 'ShuffleId' }

export const JobIdT = t.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })
export const NodeIdT = t.String({ minLength: 1, maxLength: 128 })
export const WorkerIdT = t.String({ minLength: 1, maxLength: 128 })

/** "JOB:STAGE:PARTITION": one unit of work. */
export const taskIdOf = (job: JobId, stage: number, partition: number): TaskId =>
  `${job}:${stage}:${partition}` as TaskId
/** "TASK#N": one try of a task; a re-run gets a new N so late reports of the old one are recognisable. */
export const attemptIdOf = (task: TaskId, attempt: number): AttemptId => `${task}#${attempt}` as AttemptId
