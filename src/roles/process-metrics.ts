// What every role's GET /metrics says about its own process and HTTP server, with prom-client: CPU,
// resident memory, heap, open files and start time under the names every Prometheus client library
// uses, and requests by route, method and code with their durations. What a role measures of its
// own work (jobs, tasks, shuffle bytes) is its business (master/metrics.ts, worker/metrics.ts).
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

// Default metrics Bun does not measure (its event loop delay monitor never records, it has no V8
// heap spaces, no GC entries, no libuv handles) or misnames (the Node.js version it emulates):
// exported, they would read as real zeros.
const UNMEASURED = [/^nodejs_eventloop_lag/, /^nodejs_active_/, /^nodejs_heap_space_/, /^nodejs_gc_/, /^nodejs_version_info$/]

/** Seconds: from a heartbeat answered in a millisecond to a slow file listing. */
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30]

/** Requests that matched no route (or were refused before routing) share one label value, so that
 *  scanners probing paths cannot make a series each. */
export const NO_ROUTE = 'none'

export class ProcessMetrics {
  readonly registry = new Registry()
  private readonly requests: Counter<'method' | 'route' | 'code'>
  private readonly durations: Histogram<'method' | 'route'>
  private readonly starts = new WeakMap<Request, number>()

  constructor() {
    collectDefaultMetrics({ register: this.registry })
    for (const m of this.registry.getMetricsAsArray()) {
      if (UNMEASURED.some(re => re.test(m.name))) this.registry.removeSingleMetric(m.name)
    }
    this.requests = new Counter({ name: 'minispark_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'code'], registers: [this.registry] })
    this.durations = new Histogram({ name: 'minispark_http_request_duration_seconds', help: 'seconds from a request\'s arrival to its answer\'s head (a streamed body may take longer), by method and route pattern',
      labelNames: ['method', 'route'], buckets: REQUEST_BUCKETS, registers: [this.registry] })
  }

  requestStarted(request: Request): void { this.starts.set(request, performance.now()) }

  /** `route`: the route's pattern (`/jobs/:id`), never the path, which holds ids. */
  requestEnded(request: Request, route: string | undefined, code: number): void {
    const r = route === undefined || route === '' ? NO_ROUTE : route
    this.requests.inc({ method: request.method, route: r, code: String(code) })
    const started = this.starts.get(request)
    if (started === undefined) return
    this.starts.delete(request)
    this.durations.observe({ method: request.method, route: r }, (performance.now() - started) / 1000)
  }

  /** The exposition of these metrics (text format 0.0.4). */
  text(): Promise<string> { return this.registry.metrics() }
}
