// Live job progress for `minispark submit --follow` and the SDK's { progress: true }: in a
// terminal, one bar per stage redrawn in place, like Spark's console progress bar
//   [Stage 1 reduce_by_key =========>          ] 12/16 (+3 running)
// and, when the output is a file or a pipe, a plain line per stage whenever its counts change.
// It only renders statuses it is given; polling the master is the caller's business.
import type { JobStatus, StageStatus } from '../api/jobs'
import { FINAL_JOB_STATES } from '../api/jobs'

/** Where progress goes: stderr by default. `isTTY` picks the live bar; `columns` its width. */
export type ProgressOut = { write(text: string): unknown; isTTY?: boolean; columns?: number }

export type ProgressOptions = {
  out?: ProgressOut
  /** node id → op, from the job request: labels stages by what their first node does */
  ops?: ReadonlyMap<string, string>
  /** force the live bar (true) or plain lines (false); default: whether `out` is a terminal */
  tty?: boolean
}

const BAR_MIN = 10
const BAR_MAX = 40

/** The node id → op map of a job request, for stage labels. */
export const opsOf = (job: { nodes: readonly { id: string; op: string }[] }): Map<string, string> =>
  new Map(job.nodes.map(n => [n.id, n.op]))

/** Returns the callback to give every status seen; it draws until it sees the job finished. */
export function progressPrinter(o: ProgressOptions = {}): (s: JobStatus) => void {
  const out = o.out ?? process.stderr
  const tty = o.tty ?? out.isTTY === true
  const ops = o.ops ?? new Map<string, string>()
  const label = (st: StageStatus): string => {
    const root = st.node_ids[0] ?? '?'
    return ops.get(root) ?? root
  }
  let drawn = 0
  let lastFrame = ''
  const plainSeen = new Map<number, string>()
  let ended = false
  return s => {
    if (ended) return
    const final = FINAL_JOB_STATES.includes(s.state)
    if (tty) {
      const width = out.columns || 80
      const lines = s.stages.map(st => barLine(st, label(st), width))
      const frame = lines.join('\n')
      if (frame !== lastFrame) {
        // Back to the first line of the block, then rewrite each line (\x1b[2K clears it).
        let text = drawn > 0 ? `\x1b[${drawn}A` : ''
        for (const l of lines) text += `\r\x1b[2K${l}\n`
        out.write(text)
        drawn = lines.length
        lastFrame = frame
      }
    } else {
      for (const st of s.stages) {
        const line = plainLine(st, label(st))
        if (plainSeen.get(st.stage_id) !== line) { plainSeen.set(st.stage_id, line); out.write(line + '\n') }
      }
    }
    if (final) {
      ended = true
      // A failure is told by whoever waits on the job (the CLI's exit message, the SDK's error),
      // with its node, message and record.
      if (s.state === 'SUCCEEDED') out.write(`job ${s.job_id} SUCCEEDED${durationOf(s)}\n`)
    }
  }
}

/** `[Stage 1 reduce_by_key ====>      ] 12/16 (+3 running)`, cut to the terminal's width. */
export function barLine(st: StageStatus, label: string, columns: number): string {
  const t = st.tasks
  const counts = ` ${t.succeeded}/${t.total}` + (t.running > 0 ? ` (+${t.running} running)` : '') + stateNote(st)
  const head = `[Stage ${st.stage_id} ${label} `
  const width = Math.max(BAR_MIN, Math.min(BAR_MAX, columns - head.length - counts.length - 2))
  const done = st.state === 'SUCCEEDED' ? width : t.total === 0 ? 0 : Math.floor((width * t.succeeded) / t.total)
  const bar = done >= width ? '='.repeat(width) : '='.repeat(done) + '>' + ' '.repeat(width - done - 1)
  const line = `${head}${bar}]${counts}`
  return line.length > columns - 1 ? line.slice(0, Math.max(0, columns - 1)) : line
}

/** `stage 1 reduce_by_key [counts → out] RUNNING 12/16 (+3 running)` */
export function plainLine(st: StageStatus, label: string): string {
  const t = st.tasks
  return `stage ${st.stage_id} ${label} [${st.node_ids.join(' → ')}] ${st.state} ${t.succeeded}/${t.total}` +
    (t.running > 0 ? ` (+${t.running} running)` : '') + (t.failed > 0 ? ` (${t.failed} failed)` : '')
}

function stateNote(st: StageStatus): string {
  switch (st.state) {
    case 'WAITING': return ' waiting'
    case 'FAILED': return ' FAILED'
    case 'CANCELLED': return ' cancelled'
    default: return st.tasks.failed > 0 ? ` (${st.tasks.failed} failed)` : ''
  }
}

function durationOf(s: JobStatus): string {
  if (s.started_at === null || s.finished_at === null) return ''
  const ms = Date.parse(s.finished_at) - Date.parse(s.started_at)
  return Number.isFinite(ms) ? ` in ${(ms / 1000).toFixed(1)} s` : ''
}
