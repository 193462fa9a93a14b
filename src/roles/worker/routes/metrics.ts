// GET /metrics on a worker: its metrics in the Prometheus text format (see ../metrics.ts).
import { Elysia } from 'elysia'
import { METRICS_CONTENT_TYPE } from '../../../api/metrics'
import type { WorkerMetrics } from '../metrics'

export const workerMetricsRoutes = (metrics: WorkerMetrics, now: () => number = Date.now) =>
  new Elysia()
    .get('/metrics', async () => new Response(await metrics.render(now()), { headers: { 'content-type': METRICS_CONTENT_TYPE } }), {
      detail: {
        summary: 'this worker\'s metrics in the Prometheus text format: task attempts, records, shuffle and spilled bytes, heartbeat age, the process (CPU, memory, heap) and its HTTP requests',
        tags: ['metrics'],
        responses: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    })
