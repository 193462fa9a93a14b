// What a worker is asked to do to swap a replaced output in (FinalizeRequest.swaps). Pure.
import type { JobId } from '../../api/ids'
import type { OutputSwap } from './events'
import { stagedPath } from './state'

/** Files older than this before a job's submission are the previous output's (the margin covers
 *  the time between the age's reckoning on the master and its use on the worker). */
const SWAP_AGE_MARGIN_MS = 1_000

export const swapOf = (path: string, job: JobId, submittedMs: number, nowMs: number): OutputSwap =>
  ({ path, staged: stagedPath(path, job), olderThanMs: Math.max(0, nowMs - submittedMs + SWAP_AGE_MARGIN_MS) })
