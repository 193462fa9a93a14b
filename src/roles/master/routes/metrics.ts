// GET /metrics: the master's metrics in the Prometheus text format (see ../metrics.ts).
import { Elysia } from 'elysia'
import { METRICS_CONTENT_TYPE } from '../../../api/metrics'
import type { Clock } from '../../clock'
import { masterMetrics } from '../metrics'
import type { MasterState } from '../state'
import type { Store } from '../store'

/** `flush` writes pending changes first: finished jobs' attempts are read from the store. */
export const metricsRoutes = (deps: { state: MasterState; store: Store; clock: Clock; flush(): void }) => {
  const scrape = masterMetrics({ state: deps.state, store: deps.store, startedMs: deps.clock.now() })
  return new Elysia()
    .get('/metrics', () => { deps.flush(); return new Response(scrape(deps.clock.now()), { headers: { 'content-type': METRICS_CONTENT_TYPE } }) }, {
      detail: {
        summary: 'metrics in the Prometheus text format: jobs, tasks and workers by state, task durations, shuffle and spilled bytes, heartbeat age',
        tags: ['metrics'],
        responses: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    })
}
