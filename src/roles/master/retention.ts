// How long the master keeps ended jobs in its store (`--keep-jobs`), and which ones go. Pure: the
// time comes in as an argument; the store applies the cut in SQL and pruner.ts runs it. Unfinished
// jobs are never pruned, whatever their age.
//
//   --keep-jobs 7d,10000   (the default) an ended job goes once it ended 7 days ago, or once 10 000
//                          newer ended jobs are kept, whichever comes first
//   --keep-jobs 500        the newest 500 ended jobs, whatever their age
//   --keep-jobs 36h        ended jobs of the last 36 hours, however many
//   --keep-jobs all        every job, for ever (the store grows without bound)

export type Retention = {
  /** the newest this many ended jobs (by submission) are kept; null: no count limit */
  maxJobs: number | null
  /** ended jobs that finished longer ago than this go; null: no age limit */
  maxAgeMs: number | null
}

const DAY_MS = 86_400_000
export const DEFAULT_RETENTION: Retention = { maxJobs: 10_000, maxAgeMs: 7 * DAY_MS }
export const DEFAULT_KEEP_JOBS = '7d,10000'

/** How often the store is pruned, besides once at start. */
export const PRUNE_EVERY_MS = 60_000

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS }

/** `--keep-jobs` text to a Retention, or a message saying what is wrong (the CLI makes it a usage error). */
export function parseRetention(text: string): Retention | { error: string } {
  const usage = 'give a job count (500), an age (7d, 36h, 90m) or both (7d,10000), or "all"'
  const trimmed = text.trim().toLowerCase()
  if (trimmed === 'all') return { maxJobs: null, maxAgeMs: null }
  const r: Retention = { maxJobs: null, maxAgeMs: null }
  const parts = trimmed.split(',').map(p => p.trim())
  for (const part of parts) {
    const count = /^\d+$/.exec(part)
    const age = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(part)
    if (count !== null) {
      const n = Number(part)
      if (r.maxJobs !== null) return { error: `two job counts in "${text}": ${usage}` }
      if (!Number.isSafeInteger(n) || n < 1) return { error: `"${part}": keep at least 1 ended job (so its result can be read), or give "all"` }
      r.maxJobs = n
    } else if (age !== null) {
      const ms = Math.round(Number(age[1]) * UNIT_MS[age[2]!]!)
      if (r.maxAgeMs !== null) return { error: `two ages in "${text}": ${usage}` }
      if (!(ms >= 1000)) return { error: `"${part}": keep ended jobs at least 1s, or give "all"` }
      r.maxAgeMs = ms
    } else {
      return { error: `"${part}": ${usage}` }
    }
  }
  return r
}

/** What the store removes now: ended jobs past the newest `keepNewest`, and those that ended before
 *  `endedBeforeMs`. Null fields remove nothing. */
export type PruneCut = { keepNewest: number | null; endedBeforeMs: number | null }

export function pruneCut(r: Retention, nowMs: number): PruneCut {
  return { keepNewest: r.maxJobs, endedBeforeMs: r.maxAgeMs === null ? null : nowMs - r.maxAgeMs }
}

export type EndedJob = { id: string; seq: number; finishedMs: number }

/** The rule itself over a plain list of ended jobs: the ids the cut removes. The store does the
 *  same in SQL; its tests hold it to this. */
export function prunedBy(cut: PruneCut, ended: readonly EndedJob[]): string[] {
  const newestFirst = [...ended].sort((a, b) => b.seq - a.seq)
  return newestFirst
    .filter((j, rank) => (cut.keepNewest !== null && rank >= cut.keepNewest) || (cut.endedBeforeMs !== null && j.finishedMs < cut.endedBeforeMs))
    .map(j => j.id)
}
