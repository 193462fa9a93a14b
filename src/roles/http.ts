// What every role's HTTP server shares: the error shape of CONTRACT section 2, the OpenAPI
// document with Swagger UI served from assets inside the binary (no CDN), and the body limit.
import { Elysia, ValidationError } from 'elysia'
import { openapi } from '@elysiajs/openapi'
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'text' }
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'text' }
import { ApiError, STATUS, errorBody } from '../api/errors'
import { tokenMatches } from '../api/auth'

export const MAX_BODY_BYTES = 16 * 1024 * 1024
export const VERSION = '0.1.0'

/** Turns any thrown error into the contract's JSON error shape and status. */
export function errorResponse(code: string | number, error: unknown): Response {
  if (error instanceof ApiError) return json(STATUS[error.code], errorBody(error.code, error.message, error.details))
  if (error instanceof ValidationError) {
    const first = error.all[0]
    const where = first && 'path' in first ? (first.path || '/') : '/'
    const what = first && 'message' in first ? first.message : 'does not match the schema'
    return json(400, errorBody('INVALID_REQUEST', `${error.type} ${where}: ${what}; see /swagger for the expected shape`, { where }))
  }
  if (code === 'NOT_FOUND') return json(404, errorBody('NOT_FOUND', 'no such route: see /swagger for the routes'))
  if (code === 'PARSE') return json(400, errorBody('INVALID_REQUEST', 'the body is not valid JSON: send Content-Type application/json with a JSON body'))
  const message = error instanceof Error ? error.message : String(error)
  console.error(JSON.stringify({ level: 'error', cause: 'unhandled', message, stack: error instanceof Error ? error.stack : undefined }))
  return json(500, errorBody('INTERNAL', `internal error: ${message}`))
}

const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

/** A role's root app: error mapping first so it covers every route mounted after it. */
export function roleApp(title: string, description: string, token: string | undefined) {
  return new Elysia()
    .onError(({ code, error }) => errorResponse(code, error))
    // Before routing, so an unknown path without the token is a 401 too.
    .onRequest(({ request }) => {
      if (token === undefined) return
      if (request.method === 'GET' && new URL(request.url).pathname === '/health') return
      if (!tokenMatches(request.headers.get('authorization'), token)) {
        return json(401, errorBody('UNAUTHORIZED', 'missing or wrong token: send Authorization: Bearer TOKEN (the CLI reads MINISPARK_TOKEN)'))
      }
    })
    .use(openapi({
      path: '/swagger',
      specPath: '/swagger/json',
      provider: 'swagger-ui',
      documentation: { info: { title, description, version: VERSION } },
      exclude: { paths: [/^\/swagger/] },
      swagger: { cdn: '/swagger/assets/swagger-ui-bundle.js', theme: '/swagger/assets/swagger-ui.css', autoDarkMode: false },
    }))
    .get('/swagger/assets/swagger-ui-bundle.js', () => new Response(swaggerBundle, { headers: { 'content-type': 'text/javascript' } }), { detail: { hide: true } })
    .get('/swagger/assets/swagger-ui.css', () => new Response(swaggerCss, { headers: { 'content-type': 'text/css' } }), { detail: { hide: true } })
    .get('/health', () => ({ ok: true as const }), { detail: { summary: 'liveness', tags: ['health'] } })
}

/** Starts listening and returns the URL, printing the contract's "listening on" line. */
export function listen(app: Elysia, role: 'master' | 'worker', host: string, port: number): { url: string; port: number } {
  app.listen({ hostname: host, port, maxRequestBodySize: MAX_BODY_BYTES })
  const actualPort = app.server?.port ?? port
  const shownHost = host.includes(':') ? `[${host}]` : host
  const url = `http://${shownHost}:${actualPort}`
  return { url, port: actualPort }
}
