// API error codes, their HTTP statuses and the error the engine throws with one. Apart from the
// wire schema (errors.ts) so that task threads, which throw these, do not load the HTTP framework.

export type ErrorCode =
  | 'INVALID_REQUEST' | 'INVALID_JOB' | 'DAG_CYCLE' | 'UNKNOWN_OP' | 'UNSUPPORTED_OP' | 'DANGLING_INPUT'
  | 'BAD_FUNCTION' | 'PATH_OUTSIDE_DATA_DIR' | 'INPUT_NOT_FOUND' | 'INPUT_CONFLICT' | 'WORKER_UNAVAILABLE' | 'OUTPUT_EXISTS' | 'OUTPUT_CONFLICT' | 'RESERVED_PATH'
  | 'UNKNOWN_JOB' | 'JOB_NOT_FINISHED' | 'UNKNOWN_WORKER' | 'UNKNOWN_ATTEMPT' | 'NOT_FOUND'
  | 'UNAUTHORIZED' | 'FORBIDDEN' | 'BODY_TOO_LARGE' | 'NO_WORKERS' | 'WORKER_BUSY' | 'STALE_INCARNATION' | 'INTERNAL'

export const STATUS: Record<ErrorCode, number> = {
  INVALID_REQUEST: 400, INVALID_JOB: 400, DAG_CYCLE: 400, UNKNOWN_OP: 400, UNSUPPORTED_OP: 400,
  DANGLING_INPUT: 400, BAD_FUNCTION: 400, PATH_OUTSIDE_DATA_DIR: 400, INPUT_NOT_FOUND: 400, INPUT_CONFLICT: 400, WORKER_UNAVAILABLE: 503,
  OUTPUT_EXISTS: 400, OUTPUT_CONFLICT: 400, RESERVED_PATH: 400, UNKNOWN_JOB: 404, NOT_FOUND: 404, UNKNOWN_WORKER: 404, UNKNOWN_ATTEMPT: 404,
  JOB_NOT_FINISHED: 409, WORKER_BUSY: 409, STALE_INCARNATION: 409, UNAUTHORIZED: 401, FORBIDDEN: 403, BODY_TOO_LARGE: 413, NO_WORKERS: 503,
  INTERNAL: 500,
}

export class ApiError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
  }
}
