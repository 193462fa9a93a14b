// The OpenAPI documents and the job schema, as a generated client or Swagger UI reads them: the
// master's and a worker's real apps answer GET /swagger/json in-process (app.handle), and the
// documents are checked by an independent validator (swagger-parser) as well as field by field.
import { PeerClient } from '../../src/api/peers'
import { afterAll, describe, expect, test } from 'bun:test'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import SwaggerParser from '@apidevtools/swagger-parser'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { OPS, JobRequest } from '../../src/api/jobs'
import { jobSchemaText } from '../../src/api/job-schema'
import { createMaster } from '../../src/roles/master/index'
import { workerApp } from '../../src/roles/worker/app'
import { OPERATION_IDS } from '../../src/roles/openapi-doc'
import { ROOT } from '../support/cluster'

type Schema = { type?: string; properties?: Record<string, Schema>; required?: string[]; anyOf?: Schema[]; items?: Schema; discriminator?: { propertyName: string }; const?: unknown }
type Operation = { operationId?: string; requestBody?: { content?: Record<string, { schema?: Schema }> } }
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; components?: { securitySchemes?: Record<string, { type: string; scheme?: string }> }; security?: unknown[] }

const TOKEN = 'openapi-test-token'
const master = createMaster({ host: '127.0.0.1', port: 0, stateDb: ':memory:', heartbeatTimeoutMs: 10_000, token: TOKEN })
// The worker's routes only reach these when a request is served; the document needs none of them.
const unused = (): never => { throw new Error('not served in this test') }
const worker = workerApp({ tasks: unused, blocks: unused, files: unused, dataDir: ROOT, own: [], peers: new PeerClient(undefined) }, undefined)
afterAll(() => master.stop())

const auth = { authorization: `Bearer ${TOKEN}` }
const get = (app: { handle(r: Request): Promise<Response> }, path: string, headers: Record<string, string> = auth) =>
  app.handle(new Request(`http://127.0.0.1${path}`, { headers }))
const docOf = async (app: { handle(r: Request): Promise<Response> }): Promise<Doc> => (await (await get(app, '/swagger/json')).json()) as Doc
const postJob = async (body: unknown) => {
  const res = await master.app.handle(new Request('http://127.0.0.1/jobs', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) }))
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } }
}
const operations = (doc: Doc) => Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, op })))

describe('the OpenAPI documents of master and worker', () => {
  test('every POST route documents a non-empty JSON request schema (5 on the master, 8 on a worker)', async () => {
    for (const [role, app, posts] of [['master', master.app, 5], ['worker', worker, 8]] as const) {
      const doc = await docOf(app)
      await SwaggerParser.validate(structuredClone(doc) as never)
      const withBody = operations(doc).filter(o => o.route.startsWith('POST '))
      expect(withBody.length, role).toBe(posts)
      for (const { route, op } of withBody) {
        const schema = op.requestBody?.content?.['application/json']?.schema
        expect(schema, `${role} ${route}`).toBeDefined()
        expect(Object.keys(schema?.properties ?? {}).length + (schema?.anyOf?.length ?? 0), `${role} ${route}`).toBeGreaterThan(0)
      }
    }
  })

  test('operation ids are meaningful and unique', async () => {
    for (const app of [master.app, worker]) {
      const ids = operations(await docOf(app)).map(o => o.op.operationId)
      expect(new Set(ids).size).toBe(ids.length)
      // each named on purpose, not the plugin's fallback that spells method and path (postJobs, getJobsById)
      for (const id of ids) expect(Object.values(OPERATION_IDS)).toContain(id ?? '')
    }
    const byRoute = new Map(operations(await docOf(master.app)).map(o => [o.route, o.op.operationId]))
    expect(byRoute.get('POST /jobs')).toBe('submitJob')
    expect(byRoute.get('DELETE /jobs/{id}')).toBe('cancelJob')
    expect(byRoute.get('GET /jobs/{id}/result')).toBe('getJobResult')
  })

  test('a node is a union told apart by op, one member per implemented op, with that op\'s fields', async () => {
    const doc = await docOf(master.app)
    const nodes = doc.paths['/jobs']!.post!.requestBody!.content!['application/json']!.schema!.properties!.nodes!.items!
    expect(nodes.discriminator).toEqual({ propertyName: 'op' })
    const members = new Map(nodes.anyOf!.map(m => [m.properties!.op!.const as string, m]))
    expect([...members.keys()].sort()).toEqual([...OPS].sort())
    for (const op of ['persist', 'read_dataset']) expect(members.has(op)).toBe(true)
    const fields = (op: string) => Object.keys(members.get(op)!.properties!).sort()
    expect(fields('map')).toEqual(['cache', 'fn', 'id', 'input', 'op'])
    expect(members.get('map')!.required!.sort()).toEqual(['fn', 'id', 'input', 'op'])
    expect(fields('read_text')).toEqual(['allow_empty', 'cache', 'id', 'op', 'path', 'with_path'])
    expect(fields('read_csv')).toContain('allow_empty')
    expect(fields('join')).toEqual(['cache', 'how', 'id', 'inputs', 'op', 'partitions'])
    expect(fields('sort')).toEqual(['by', 'cache', 'descending', 'id', 'input', 'key', 'op', 'partitions'])
    expect(fields('count')).toEqual(['id', 'input', 'op'])
    // Every node but a sink may be cached (CONTRACT section 8).
    for (const op of OPS) expect(fields(op).includes('cache')).toBe(!['write_text', 'write_jsonl', 'collect', 'count', 'persist'].includes(op))
    expect(fields('persist')).toEqual(['id', 'input', 'level', 'name', 'op', 'replace'])
    expect(fields('read_dataset')).toEqual(['cache', 'id', 'name', 'op'])
  })

  test('with a token: a bearer security scheme, so Swagger UI has an Authorize button', async () => {
    const doc = await docOf(master.app)
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(doc.security).toEqual([{ bearer: [] }])
  })
})

describe('job.schema.json', () => {
  test('GET /job.schema.json is the file at the repository root, generated from the same schema', async () => {
    const res = await get(master.app, '/job.schema.json')
    expect(res.status).toBe(200)
    const served = await res.text()
    expect(served).toBe(jobSchemaText())
    expect(readFileSync(join(ROOT, 'job.schema.json'), 'utf8')).toBe(served)   // else: bun src/api/job-schema.ts
    const schema = JSON.parse(served) as Schema & { $schema: string }
    expect(schema.$schema).toContain('json-schema.org')
    expect(schema.properties?.nodes?.items?.anyOf?.length).toBe(OPS.length)
  })

  test('every example job is valid by it', () => {
    const check = TypeCompiler.Compile(JobRequest)
    const files = readdirSync(join(ROOT, 'examples')).filter(f => f.endsWith('.json'))
    expect(files.length).toBeGreaterThan(0)
    for (const f of files) {
      const job = JSON.parse(readFileSync(join(ROOT, 'examples', f), 'utf8')) as unknown
      expect([...check.Errors(job)].map(e => `${f} ${e.path}: ${e.message}`)).toEqual([])
    }
  })

  test('a job file may name its schema with "$schema"', async () => {
    // a dangling input is found after the schema check: reaching it shows "$schema" was accepted
    const r = await postJob({ $schema: './job.schema.json', nodes: [{ id: 'n', op: 'count', input: 'nowhere' }] })
    expect(r.body.error?.code).toBe('DANGLING_INPUT')
    const without = await postJob({ $schemas: './job.schema.json', nodes: [{ id: 'n', op: 'count', input: 'nowhere' }] })
    expect(without.body.error?.message).toContain('did you mean "$schema"?')
  })
})

describe('schema errors name the node and the nearest field', () => {
  const src = { id: 'lines', op: 'read_text', path: 'in.txt' }
  test('a misspelt field of a node', async () => {
    const r = await postJob({ nodes: [src, { id: 'words', op: 'map', inptu: 'lines', fn: 'x => x' }, { id: 'n', op: 'count', input: 'words' }] })
    expect(r.status).toBe(400)
    expect(r.body.error?.code).toBe('INVALID_REQUEST')
    expect(r.body.error?.message).toContain('node "words"')
    expect(r.body.error?.message).toContain('did you mean "input"?')
  })

  test('a field of another op', async () => {
    const r = await postJob({ nodes: [{ ...src, fn: 'x => x' }, { id: 'n', op: 'count', input: 'lines' }] })
    expect(r.status).toBe(400)
    expect(r.body.error?.message).toContain('node "lines" (read_text)')
    expect(r.body.error?.message).toContain('read_text takes no "fn"')
  })

  test('a missing field', async () => {
    const r = await postJob({ nodes: [src, { id: 'words', op: 'map', input: 'lines' }, { id: 'n', op: 'count', input: 'words' }] })
    expect(r.status).toBe(400)
    expect(r.body.error?.code).toBe('INVALID_JOB')
    expect(r.body.error?.message).toContain('node "words" (map) needs "fn"')
  })

  test('a misspelt op, and a misspelt job field', async () => {
    const op = await postJob({ nodes: [src, { id: 'n', op: 'cuont', input: 'lines' }] })
    expect(op.body.error?.code).toBe('UNKNOWN_OP')
    expect(op.body.error?.message).toContain('did you mean "count"?')
    const job = await postJob({ partition: 3, nodes: [src, { id: 'n', op: 'count', input: 'lines' }] })
    expect(job.body.error?.code).toBe('INVALID_REQUEST')
    expect(job.body.error?.message).toContain('did you mean "partitions"?')
  })

  test('a wrong type names the node and what is expected', async () => {
    const r = await postJob({ nodes: [src, { id: 's', op: 'sort', input: 'lines', partitions: 0 }, { id: 'n', op: 'count', input: 's' }] })
    expect(r.body.error?.code).toBe('INVALID_REQUEST')
    expect(r.body.error?.message).toContain('node "s" (sort), field "partitions": expected an integer ≥ 1')
  })
})
