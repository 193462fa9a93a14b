// Applies the retention rule (retention.ts) to the store: once at start, then every PRUNE_EVERY_MS.
// Deletes in small transactions and yields between them, so heartbeats and reports are answered
// while a large backlog (a first start on an old state file) goes. Decides nothing itself; a run
// that fails (a locked or full disk) is logged and tried again at the next tick.
import type { Clock } from '../clock'
import { silentLogger, type Logger } from '../log'
import { pruneCut, PRUNE_EVERY_MS, type Retention } from './retention'
import type { Store } from './store'

/** One transaction: small enough to hold the master's thread for milliseconds, not seconds. */
const BUDGET = { maxJobs: 200, maxAttempts: 20_000 }

export type PruneTotals = { jobs: number; attempts: number }

export type Pruner = {
  /** a run now (or the one under way): resolves with what it removed */
  run(): Promise<PruneTotals>
  /** no transaction starts after this (the store is about to close) */
  stop(): void
}

export function startPruner(deps: { store: Store; clock: Clock; retention: Retention; everyMs?: number; logger?: Logger }): Pruner {
  const logger = deps.logger ?? silentLogger()
  let running: Promise<PruneTotals> | null = null
  let stopped = false
  const runOnce = async (): Promise<PruneTotals> => {
    const totals = { jobs: 0, attempts: 0 }
    // The cut is fixed for the whole run: jobs that end meanwhile wait for the next one.
    const cut = pruneCut(deps.retention, deps.clock.now())
    while (!stopped) {
      const r = deps.store.pruneJobs(cut, BUDGET)
      totals.jobs += r.jobs
      totals.attempts += r.attempts
      if (!r.more) break
      await new Promise(resolve => setImmediate(resolve))
    }
    if (totals.jobs > 0) logger.info({ event: 'jobs-pruned', jobs: totals.jobs, attempts: totals.attempts }, `pruned ${totals.jobs} ended job(s) past --keep-jobs`)
    return totals
  }
  const run = (): Promise<PruneTotals> => {
    running ??= runOnce()
      .catch(e => {
        logger.error({ event: 'prune-failed', error: (e as Error).message }, `pruning ended jobs failed: ${(e as Error).message}; trying again at the next run`)
        return { jobs: 0, attempts: 0 }
      })
      .finally(() => { running = null })
    return running
  }
  void run()
  deps.clock.every(deps.everyMs ?? PRUNE_EVERY_MS, () => void run())
  return { run, stop: () => { stopped = true } }
}
