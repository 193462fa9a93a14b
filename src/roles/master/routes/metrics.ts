// GET /metrics: the master's metrics in the Prometheus text format (see ../metrics.ts).
import { Elysia } from 'elysia'
import { METRICS_CONTENT_TYPE } from '../../../api/metrics'
import type { Clock } from '../../clock'
import type { ProcessMetrics } from '../../process-metrics'
import { masterMetrics } from '../metrics'
import type { MasterState } from '../state'
import type { Store } from '../store'

/** `flush` writes pending changes first: finished jobs' attempts are read from the store. */
export const metricsRoutes = (deps: { state: MasterState; store: Store; clock: Clock; process: ProcessMetrics; flush(): void }) => {
  const scrape = masterMetrics({ state: deps.state, store: deps.store, process: deps.process })
  return new Elysia()
    .get('/metrics', async () => { deps.flush(); return new Response(await scrape(deps.clock.now()), { headers: { 'content-type': METRICS_CONTENT_TYPE } }) }, {
      detail: {
        summary: 'metrics in the Prometheus text format: jobs, tasks and workers by state, job and task durations, shuffle and spilled bytes, heartbeat age, the process (CPU, memory, heap) and its HTTP requests',
        tags: ['metrics'],
        responses: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    })
}
