// Free variables and syntax errors in a job's function source, found at submit (src/engine/udf-scope.ts),
// unit by unit, then through POST /jobs on a real master app, as a user of JSON jobs meets them.
import { afterAll, describe, expect, test } from 'bun:test'
import { checkFunctionScope } from '../../src/engine/udf-scope'
import { createMaster } from '../../src/roles/master/index'

describe('checkFunctionScope', () => {
  test('accepts what runs on a worker: params, globals, its own names, nested functions', () => {
    for (const ok of ['x => x', '(a, b) => a + b', '([w, n]) => n >= params.min_count', 'l => JSON.parse(l)',
      'function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }', 'x => { const seen = new Set(); for (const c of x) seen.add(c); return seen.size }',
      '(re => line => re.test(line))(new RegExp(params.pattern))', '({ a, ...rest }) => [a, Object.keys(rest)]',
      'x => x // a comment after', '  x =>\n    x * 2\n', 'x => { try { return JSON.parse(x) } catch (e) { return String(e) } }',
      'x => class { m() { return x } }', '(x, y = Math.PI) => x * y']) {
      expect({ ok, problem: checkFunctionScope(ok) }).toEqual({ ok, problem: null })
    }
  })

  test('refuses a free variable, naming it, where it is, and the fix', () => {
    const p = checkFunctionScope('l => l.length > minLen')!
    expect(p).toContain('"minLen"')
    expect(p).toContain('params.minLen')
    expect(p).toContain('line 1, column 17')
    // in nested functions, default values and blocks too
    for (const [src, name] of [['x => [1, 2].map(y => y + offset)', 'offset'], ['(x, y = limit) => x + y', 'limit'],
      ['x => { if (x) { return helper(x) } return 0 }', 'helper'], ['x => require("fs")', 'require'], ['x => process.env.HOME', 'process']] as const) {
      expect(checkFunctionScope(src) ?? '').toContain(`"${name}"`)
    }
  })

  test('a syntax error is placed in the user\'s own text, line and column', () => {
    const p = checkFunctionScope('x => {\n  const y = x *\n}')!
    expect(p).toContain('does not parse')
    expect(p).toContain('line 3, column 1')
    expect(checkFunctionScope('l => l.length >')).toContain('line 1, column 16')
    expect(checkFunctionScope('x => x; evil()')).toContain('line 1, column 7')
  })
})

describe('POST /jobs checks JSON jobs as the SDK checks its functions', () => {
  const master = createMaster({ host: '127.0.0.1', port: 0, stateDb: ':memory:', heartbeatTimeoutMs: 10_000 })
  afterAll(() => master.stop())
  const post = async (nodes: unknown[]) => {
    const res = await master.app.handle(new Request('http://127.0.0.1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nodes }) }))
    return { status: res.status, error: ((await res.json()) as { error?: { code: string; message: string; node_id?: string } }).error }
  }
  const src = { id: 'lines', op: 'read_text', path: 'in.txt' }

  test('a free variable in fn is a 400 naming the node, the field and the variable', async () => {
    const r = await post([src, { id: 'long', op: 'filter', input: 'lines', fn: 'l => l.length > minLen' }, { id: 'n', op: 'count', input: 'long' }])
    expect(r.status).toBe(400)
    expect(r.error?.code).toBe('BAD_FUNCTION')
    expect(r.error?.node_id).toBe('long')
    expect(r.error?.message).toContain('"minLen"')
    expect(r.error?.message).toContain('params.minLen')
  })

  test('the same in a sort key; a syntax error at its line and column', async () => {
    const key = await post([src, { id: 's', op: 'sort', input: 'lines', key: 'l => l[column]' }, { id: 'n', op: 'count', input: 's' }])
    expect(key.error?.code).toBe('BAD_FUNCTION')
    expect(key.error?.message).toContain('field "key"')
    expect(key.error?.message).toContain('"column"')
    const syntax = await post([src, { id: 'm', op: 'map', input: 'lines', fn: 'l => {\n  return l +\n}' }, { id: 'n', op: 'count', input: 'm' }])
    expect(syntax.error?.code).toBe('BAD_FUNCTION')
    expect(syntax.error?.message).toContain('line 3, column 1')
  })
})
