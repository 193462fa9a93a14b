// Completes the OpenAPI document @elysiajs/openapi generates, from the same route schemas:
// - request bodies: the plugin lists a body's media types only for named parsers, and every role
//   reads JSON with its own capped parser (http.ts), so each POST came out as `"content": {}`;
// - operation ids a generated client can use as method names (`submitJob`, not `postJobs`);
// - the bearer scheme, so Swagger UI has an Authorize button when the role has a token.
type Operation = { operationId?: string; requestBody?: unknown; security?: unknown[] }
type Doc = {
  paths?: Record<string, Record<string, Operation>>
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> }
  security?: unknown[]
}
export type RouteInfo = { method: string; path: string; hooks: { body?: unknown; detail?: { hide?: boolean } } }

/** Every documented route's operation id, by "METHOD /path" as the document spells it. */
export const OPERATION_IDS: Readonly<Record<string, string>> = {
  'GET /health': 'health',
  // master: users
  'POST /jobs': 'submitJob',
  'GET /jobs': 'listJobs',
  'GET /jobs/{id}': 'getJob',
  'DELETE /jobs/{id}': 'cancelJob',
  'GET /jobs/{id}/tasks': 'listJobTasks',
  'GET /jobs/{id}/result': 'getJobResult',
  'GET /jobs/{id}/dag': 'getJobDag',
  'GET /workers': 'listWorkers',
  'GET /metrics': 'metrics',
  'GET /job.schema.json': 'getJobSchema',
  // master: from workers
  'POST /heartbeat': 'heartbeat',
  'GET /outputs': 'listOutputs',
  'GET /datasets': 'listDatasets',
  'GET /datasets/{name}': 'getDataset',
  'DELETE /datasets/{name}': 'deleteDataset',
  'POST /tasks/report': 'reportTask',
  'POST /tasks/reports': 'reportTasks',
  'POST /tasks/commit': 'askCommit',
  // worker: from the master and peers
  'POST /tasks': 'runTask',
  'POST /tasks/batch': 'runTasks',
  'DELETE /tasks/{attempt}': 'killTask',
  'POST /shuffle_data/fetch': 'fetchShuffleData',
  'GET /shuffle_data/shuffle/{job}/{shuffle}/{reduce}/{attempt}': 'getShuffleBlock',
  'GET /shuffle_data/output/*': 'getOutputPart',
  'POST /outputs/replicate': 'replicateOutputPart',
  'POST /inputs/list': 'listInputs',
  'POST /outputs/clear': 'clearOutputs',
  'POST /outputs/finalize': 'finalizeOutputs',
  'POST /jobs/{id}/drop': 'dropJob',
}

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH'])
export const openApiPath = (path: string): string => path.replace(/:([^/]+)/g, '{$1}')

/** Fills in `doc` (in place: the plugin caches it) from the routes; returns it. */
export function completeDocument<D extends Doc>(doc: D, routes: readonly RouteInfo[], secured: boolean): D {
  for (const r of routes) {
    const op = doc.paths?.[openApiPath(r.path)]?.[r.method.toLowerCase()]
    if (op === undefined) continue
    if (METHODS_WITH_BODY.has(r.method) && r.hooks.body !== undefined) {
      op.requestBody = { required: true, content: { 'application/json': { schema: r.hooks.body } } }
    }
    const id = OPERATION_IDS[`${r.method} ${openApiPath(r.path)}`]
    if (id !== undefined) op.operationId = id
  }
  if (secured) {
    doc.components = { ...doc.components, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the token given to the master and workers (--token-file or MINISPARK_TOKEN)' } } }
    doc.security = [{ bearer: [] }]
    const health = doc.paths?.['/health']?.get
    if (health !== undefined) health.security = []
  }
  return doc
}
