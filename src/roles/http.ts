// What every role's HTTP server shares: the error shape of CONTRACT section 2, the OpenAPI
// document with Swagger UI served from assets inside the binary (no CDN), and the body limit.
import { Elysia, ValidationError } from 'elysia'
import { openapi } from '@elysiajs/openapi'
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'text' }
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'text' }
import { ApiError, STATUS, errorBody } from '../api/errors'
import { tokenMatches } from '../api/auth'
import { completeDocument, type RouteInfo } from './openapi-doc'
import { swaggerPage } from './swagger-page'
import { explainNodeError, suggestProperty } from '../api/job-errors'
import type { ProcessMetrics } from './process-metrics'
import type { Logger } from './log'

export const MAX_BODY_BYTES = 16 * 1024 * 1024
export const VERSION = '0.1.0'

/** Turns any thrown error into the contract's JSON error shape and status; an error that is not
 *  the client's (a bug) goes to `logger` with its stack. */
export function errorResponse(code: string | number, error: unknown, logger?: Logger): Response {
  // Elysia wraps what a body parser throws; our parser throws ApiErrors that say what to fix.
  const cause = (error as { cause?: unknown }).cause
  if (code === 'PARSE' && cause instanceof ApiError) error = cause
  if (error instanceof ApiError) return json(STATUS[error.code], errorBody(error.code, error.message, error.details))
  if (error instanceof ValidationError) {
    const first = error.all[0]
    const where = first && 'path' in first ? (first.path || '/') : '/'
    const node = error.type === 'body' ? explainNodeError(error.value, where, (s, m) => expected(s as Schema, m)) : null
    if (node !== null) return json(400, errorBody(node.code, `${node.message}; see /job.schema.json`, node.details))
    const what = first && 'schema' in first ? expected(first.schema as Schema, first.message) : 'does not match the schema'
    const suggestion = first && 'schema' in first && first.message === 'Unexpected property' ? suggestProperty(first.schema, where) : ''
    const hint = suggestion === '' ? '' : `: ${suggestion}`
    return json(400, errorBody('INVALID_REQUEST', `${error.type} ${where}: ${what}${hint}; see /swagger for the expected shape`, { where }))
  }
  if (code === 'NOT_FOUND') return json(404, errorBody('NOT_FOUND', 'no such route: see /swagger for the routes'))
  if (code === 'PARSE') return json(400, errorBody('INVALID_REQUEST', 'the body is not valid JSON: send Content-Type application/json with a JSON body'))
  const message = error instanceof Error ? error.message : String(error)
  const stack = error instanceof Error ? error.stack : undefined
  if (logger !== undefined) logger.error({ event: 'unhandled', error: message, stack }, `internal error: ${message}`)
  else console.error(JSON.stringify({ level: 'error', event: 'unhandled', message, stack }))
  return json(500, errorBody('INTERNAL', `internal error: ${message}`))
}

type Schema = { type?: string; format?: string; anyOf?: Schema[]; minimum?: number; maximum?: number; minLength?: number; maxLength?: number; maxItems?: number; enum?: unknown[]; const?: unknown }

// Elysia accepts numeric strings for numbers, so a number's schema is a union with a string
// form; name the real expectation rather than "Expected union value".
function expected(schema: Schema, fallback: string): string {
  const real = schema.anyOf?.filter(s => !(s.type === 'string' && (s.format === 'integer' || s.format === 'numeric')))
  if (real !== undefined && real.length === 1) return expected(real[0]!, fallback)
  if (real !== undefined && real.every(s => s.const !== undefined)) return `expected one of ${real.map(s => JSON.stringify(s.const)).join(', ')}`
  if (schema.type === 'integer' || schema.type === 'number') {
    const range = [schema.minimum !== undefined ? `≥ ${schema.minimum}` : '', schema.maximum !== undefined ? `≤ ${schema.maximum}` : ''].filter(Boolean).join(' and ')
    return `expected ${schema.type === 'integer' ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}`
  }
  if (schema.type === 'string' && (schema.maxLength !== undefined || schema.minLength !== undefined)) {
    return `expected a string of ${schema.minLength ?? 0} to ${schema.maxLength ?? '∞'} characters`
  }
  return fallback
}

/** Reads a JSON body with a byte cap, whatever its framing (Content-Length or chunked). */
export async function readJsonBody(request: Request, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const length = request.headers.get('content-length')
  const declared = Number(length ?? '0')
  if (declared > maxBytes) throw tooLarge(maxBytes)
  // With a Content-Length the server reads exactly that many bytes, so the body is read whole in
  // one call (a stream iterator per request was a fifth of the master's CPU under many small
  // requests); a chunked body is counted as it comes, since only its end says how large it is.
  const text = length !== null ? await request.text() : await readCounted(request, maxBytes)
  if (nestingOver(text, MAX_JSON_DEPTH)) throw new ApiError('INVALID_REQUEST', `the JSON body is nested deeper than ${MAX_JSON_DEPTH} levels: flatten it`)
  try {
    return JSON.parse(text)
  } catch (e) {
    if (e instanceof RangeError) throw new ApiError('INVALID_REQUEST', 'the JSON body is nested too deeply: flatten it')
    throw new ApiError('INVALID_REQUEST', `the body is not valid JSON (${(e as Error).message}): send Content-Type application/json with a JSON body`)
  }
}

async function readCounted(request: Request, maxBytes: number): Promise<string> {
  const chunks: Uint8Array[] = []
  let total = 0
  if (request.body !== null) {
    for await (const chunk of request.body) {
      total += chunk.length
      if (total > maxBytes) throw tooLarge(maxBytes)
      chunks.push(chunk)
    }
  }
  return Buffer.concat(chunks).toString('utf8')
}

// Validation and clean-up walk values recursively: a body nested 100 000 deep would overflow the
// stack there, so it is refused before parsing. No request of the API needs more than a few levels.
const MAX_JSON_DEPTH = 64

function nestingOver(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++                 // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) { if (++depth > max) return true }
    else if (c === 93 || c === 125) depth--
  }
  return false
}

const tooLarge = (maxBytes: number): ApiError =>
  new ApiError('BODY_TOO_LARGE', `the request body is over ${maxBytes / 1048576} MiB: send less (write large results to files, not to collect)`)

const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

const LOOPBACK_IPV4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/** Whether a host name or address (no port, IPv6 without brackets) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  const m = LOOPBACK_IPV4.exec(h)
  return m !== null && m.slice(1).every(n => Number(n) <= 255)
}

/** The host of a Host header value (`name:port`, `[v6]:port`), or null when it does not parse. */
export function hostOfHeader(value: string): string | null {
  const v = value.trim()
  const m = /^\[([0-9a-fA-F:.]+)\](?::\d{1,5})?$/.exec(v) ?? /^([^:[\]\s]+)(?::\d{1,5})?$/.exec(v)
  return m === null ? null : m[1]!
}

/**
 * Without a token, a role on loopback trusts whoever can reach it, which a web page can do by
 * DNS rebinding (its own name resolved to 127.0.0.1). Such a request names the page's host in
 * Host, and a browser adds the page's Origin, so both must be loopback. A role bound to another
 * address without a token runs with --insecure on a trusted network, where Host is that
 * network's name for it: there the check is not made. No server (app.handle) counts as loopback.
 */
export function refuseRebinding(request: Request, boundHost: string | undefined): Response | undefined {
  if (boundHost !== undefined && !isLoopbackHost(boundHost.replace(/^\[|\]$/g, ''))) return
  const hostHeader = request.headers.get('host') ?? new URL(request.url).host
  const host = hostOfHeader(hostHeader)
  if (host === null || !isLoopbackHost(host)) {
    return json(403, errorBody('FORBIDDEN', `Host "${hostHeader}" is not a loopback name or address: without a token this server answers only localhost, 127.x.x.x and [::1] (give the cluster a token to reach it by another name)`))
  }
  const origin = request.headers.get('origin')
  if (origin !== null) {
    let originHost: string | null = null
    try { originHost = new URL(origin).hostname.replace(/^\[|\]$/g, '') } catch { /* "null" or garbage: foreign */ }
    if (originHost === null || originHost === '' || !isLoopbackHost(originHost)) {
      return json(403, errorBody('FORBIDDEN', `requests from the web page at Origin "${origin}" are refused: without a token this server answers only pages served from a loopback address`))
    }
  }
}

// What a browser must load before it can send a token (CONTRACT section 7): the web UI's and
// Swagger UI's pages and assets, and the job schema. None holds data; /swagger/json, /ui/clock and
// every data route stay behind the token.
const PUBLIC_PATHS: ReadonlySet<string> = new Set([
  '/health', '/', '/ui', '/ui/app.js', '/ui/style.css', '/favicon.ico', '/job.schema.json',
  '/swagger', '/swagger/assets/swagger-ui-bundle.js', '/swagger/assets/swagger-ui.css',
])

/** A role's root app: error mapping first so it covers every route mounted after it. With
 *  `metrics`, every request is counted and timed, refused ones and unknown routes included;
 *  `logger` hears of internal errors. */
export function roleApp(title: string, description: string, token: string | undefined, metrics?: ProcessMetrics, logger?: Logger) {
  // normalize: false, so a field the schema does not know (a typo such as "partition") is a 400
  // naming it instead of being dropped in silence.
  const app = new Elysia({ normalize: false })
  const swaggerHtml = swaggerPage(title)
  // An error's answer is made in onError, which Elysia does not show to onAfterResponse.
  const errorStatus = new WeakMap<Request, number>()
  const refuse = (request: Request, answer: Response | undefined): Response | undefined => {
    if (answer !== undefined) metrics?.requestEnded(request, undefined, answer.status)
    return answer
  }
  return app
    .onError(({ code, error, request }) => {
      const answer = errorResponse(code, error, logger)
      errorStatus.set(request, answer.status)
      return answer
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, responseValue, set }) => {
      if (metrics === undefined) return
      const status = responseValue instanceof Response ? responseValue.status : errorStatus.get(request) ?? (typeof set.status === 'number' ? set.status : 200)
      metrics.requestEnded(request, route, status)
    })
    // Runs after every handler, so it only compares a string unless this is the document.
    .onAfterHandle({ as: 'global' }, ({ request, response }) => {
      if (request.url.endsWith('/swagger/json') && new URL(request.url).pathname === '/swagger/json') {
        completeDocument(response as object, app.routes as RouteInfo[], token !== undefined)
      }
    })
    .onParse({ as: 'global' }, ({ request }, contentType) => contentType.startsWith('application/json') ? readJsonBody(request) : undefined)
    // Before routing, so an unknown path without the token is a 401 too.
    .onRequest(({ request, server }) => {
      metrics?.requestStarted(request)
      if (token === undefined) return refuse(request, refuseRebinding(request, server?.hostname))
      if ((request.method === 'GET' || request.method === 'HEAD') && PUBLIC_PATHS.has(new URL(request.url).pathname)) return
      if (!tokenMatches(request.headers.get('authorization'), token)) {
        return refuse(request, json(401, errorBody('UNAUTHORIZED', 'missing or wrong token: send Authorization: Bearer TOKEN (the CLI reads MINISPARK_TOKEN)')))
      }
    })
    .use(openapi({
      path: '/swagger',
      specPath: '/swagger/json',
      // Our own page (swagger-page.ts): it sends the tab's token, the document's request included.
      provider: null,
      documentation: { info: { title, description, version: VERSION } },
      exclude: { paths: [/^\/swagger/] },
    }))
    .get('/swagger', () => new Response(swaggerHtml, { headers: { 'content-type': 'text/html; charset=utf-8' } }), { detail: { hide: true } })
    .get('/swagger/assets/swagger-ui-bundle.js', () => new Response(swaggerBundle, { headers: { 'content-type': 'text/javascript' } }), { detail: { hide: true } })
    .get('/swagger/assets/swagger-ui.css', () => new Response(swaggerCss, { headers: { 'content-type': 'text/css' } }), { detail: { hide: true } })
    .get('/health', () => ({ ok: true as const }), { detail: { summary: 'liveness', tags: ['health'] } })
}

/** Seconds a connection may stay idle (Bun's limit is 255): above every client's own idle limit. */
export const SERVER_IDLE_SECONDS = 120

/** Starts listening and returns the URL, printing the contract's "listening on" line. */
export function listen(app: Elysia, role: 'master' | 'worker', host: string, port: number): { url: string; port: number } {
  // Bun's own cap answers 413 with no body; it stays far above ours so readJsonBody can answer
  // with the contract's error shape.
  // A connection idle this long is closed. Bun's default, 10 s, cut shuffle streams whose reader was
  // busy (a reduce task spilling or merging on a loaded machine does not read for a while), and the
  // job failed after its fetch retries; the reader bounds its own waits (api/peers.ts).
  app.listen({ hostname: host, port, maxRequestBodySize: 4 * MAX_BODY_BYTES, idleTimeout: SERVER_IDLE_SECONDS })
  const actualPort = app.server?.port ?? port
  const shownHost = host.includes(':') ? `[${host}]` : host
  const url = `http://${shownHost}:${actualPort}`
  return { url, port: actualPort }
}
