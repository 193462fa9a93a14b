// The client commands that follow a job to its end and show what it computed: submit (--follow),
// wait and result. The exit code follows the job: 0 SUCCEEDED, 1 FAILED or CANCELLED (or not
// finished yet, for result); 130 when the user stops following with Ctrl-C.
import type { MasterClient } from '../api/client'
import { FINAL_JOB_STATES, type JobRequest, type JobResult, type JobStatus } from '../api/jobs'
import { renderResult } from '../roles/local'
import { opsOf, progressPrinter } from './progress'

export type FollowOptions = {
  json: boolean
  /** Ctrl-C cancels the job instead of leaving it running */
  cancelOnInterrupt: boolean
  /** how to name the master in the hint printed on Ctrl-C, e.g. " --master http://h:8080" */
  masterHint: string
  ops?: ReadonlyMap<string, string>
}

const SIGINT_EXIT = 130

/** The page of the job in the master's web UI. */
export const jobUiUrl = (client: MasterClient, id: string): string => `${client.base}/#/jobs/${encodeURIComponent(id)}`

export async function submitJob(client: MasterClient, job: JobRequest, o: FollowOptions & { follow: boolean }): Promise<number> {
  const id = await client.submit(job)
  const ui = jobUiUrl(client, id)
  if (o.json && !o.follow) { console.log(JSON.stringify({ job_id: id, ui })); return 0 }
  if (!o.json) console.log(id)
  console.error(`job ${id} submitted: ${ui}`)
  if (!o.follow) return 0
  return follow(client, id, { ...o, ops: opsOf(job) })
}

/** Shows progress until the job ends, then its result (or error); the exit code follows its state. */
export async function follow(client: MasterClient, id: string, o: FollowOptions): Promise<number> {
  // With --json the progress is for a person watching, so only on a terminal; stdout stays one JSON value.
  const draw = o.json && process.stderr.isTTY !== true ? undefined : progressPrinter(o.ops === undefined ? {} : { ops: o.ops })
  let interrupted = false
  const onInterrupt = (): void => {
    if (interrupted) process.exit(SIGINT_EXIT)   // a second Ctrl-C does not wait for the cancel
    interrupted = true
    if (o.cancelOnInterrupt) {
      console.error(`\ncancelling job ${id}...`)
      client.cancel(id).then(s => { console.error(`job ${id} ${s.state}`); process.exit(SIGINT_EXIT) },
        e => { console.error(`could not cancel job ${id}: ${(e as Error).message}`); process.exit(SIGINT_EXIT) })
    } else {
      console.error(`\nstopped following job ${id}; it keeps running. Cancel it with: minispark cancel ${id}${o.masterHint}` +
        `\n(or follow it again: minispark wait ${id}${o.masterHint})`)
      process.exit(SIGINT_EXIT)
    }
  }
  process.on('SIGINT', onInterrupt)
  try {
    const final = await client.waitDone(id, { timeoutMs: 7 * 24 * 3600_000, pollMs: 200, ...(draw === undefined ? {} : { onStatus: draw }) })
    return await report(client, final, o.json)
  } finally {
    process.off('SIGINT', onInterrupt)
  }
}

/** `minispark result ID`: the result of a finished job, without waiting. */
export async function showResult(client: MasterClient, id: string, json: boolean): Promise<number> {
  const s = await client.status(id)
  if (!FINAL_JOB_STATES.includes(s.state)) {
    if (json) console.log(JSON.stringify(envelope(s, null)))
    console.error(`job ${id} is ${s.state}: no result yet (minispark wait ${id} waits for it)`)
    return 1
  }
  return report(client, s, json)
}

async function report(client: MasterClient, s: JobStatus, json: boolean): Promise<number> {
  const result = s.state === 'SUCCEEDED' ? await client.result(s.job_id) : null
  if (json) console.log(JSON.stringify(envelope(s, result)))
  else if (result !== null) { const text = renderResult(result); if (text !== '') console.log(text) }
  return finish(s)
}

/** What --json prints for a finished (or unfinished) job: its state, error and the sinks' results. */
const envelope = (s: JobStatus, result: JobResult | null) => ({ job_id: s.job_id, state: s.state, error: s.error, result })

/** Says why a job did not succeed (stderr) and gives its exit code. */
export function finish(s: JobStatus): number {
  if (s.state === 'SUCCEEDED') return 0
  if (s.error) {
    console.error(`job ${s.job_id} ${s.state}: ${s.error.message}` + (s.error.node_id ? ` (node ${s.error.node_id})` : '') +
      (s.error.record ? `\n  record: ${s.error.record}` : ''))
  } else console.error(`job ${s.job_id} ${s.state}`)
  return 1
}
