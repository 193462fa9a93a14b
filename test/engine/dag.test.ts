// Unit tests of the DAG validator and its topological order (src/engine/dag.ts). Pure: no I/O.
// Each rejection checks the ApiError code (it picks the HTTP status) and that the message names
// what the user must fix, since that message is all a user sees of a 400.
import { describe, expect, test } from 'bun:test'
import { ApiError, type ErrorCode } from '../../src/api/errors'
import { OPS, type JobRequest, type NodeSpec } from '../../src/api/jobs'
import { checkDataPath, validateJob, type ValidJob } from '../../src/engine/dag'
import { SUPPORTED_OPS } from '../../src/engine/plan'
import { checkFunctionSource } from '../../src/engine/udf'

const job = (...nodes: NodeSpec[]): JobRequest => ({ nodes })
const src = (id: string, path = 'in/*.txt'): NodeSpec => ({ id, op: 'read_text', path })
const map = (id: string, input: string, fn = 'x => x'): NodeSpec => ({ id, op: 'map', input, fn })
const count = (id: string, input: string): NodeSpec => ({ id, op: 'count', input })

/** Runs `f`, expects an ApiError and returns it so the test can look at message and details. */
function apiError(f: () => unknown): ApiError {
  try {
    f()
  } catch (e) {
    if (e instanceof ApiError) return e
    throw new Error(`expected an ApiError, got ${String(e)}`)
  }
  throw new Error('expected an ApiError, but nothing was thrown')
}

function rejects(req: JobRequest, code: ErrorCode, ...named: string[]): ApiError {
  const e = apiError(() => validateJob(req))
  expect(e.code).toBe(code)
  for (const n of named) expect(e.message).toContain(n)
  return e
}

/** Every node comes after all of its inputs, and every node appears exactly once. */
function expectTopological(v: ValidJob): void {
  expect(new Set(v.order).size).toBe(v.order.length)
  expect([...v.order].sort()).toEqual([...v.nodes.keys()].sort())
  const at = new Map(v.order.map((id, i) => [id, i]))
  for (const id of v.order) {
    for (const input of v.inputsOf.get(id) ?? []) expect(at.get(input)!).toBeLessThan(at.get(id)!)
  }
}

/** `cycle` is [n0, n1, ..., n0] in data-flow order: each node feeds the next one. */
function expectCycleInDataFlowOrder(v: JobRequest, cycle: readonly string[]): void {
  expect(cycle.length).toBeGreaterThanOrEqual(2)
  expect(cycle[0]).toBe(cycle[cycle.length - 1]!)
  const byId = new Map(v.nodes.map(n => [n.id, n]))
  for (let i = 0; i + 1 < cycle.length; i++) {
    const consumer = byId.get(cycle[i + 1]!)!
    const inputs = consumer.inputs ?? (consumer.input === undefined ? [] : [consumer.input])
    expect(inputs).toContain(cycle[i]!)
  }
}

describe('validateJob rejects', () => {
  test('two nodes with the same id', () => {
    const e = rejects(job(src('lines'), src('lines', 'b.txt'), count('n', 'lines')), 'INVALID_JOB', '"lines"', 'unique')
    expect(e.details).toEqual({ node_id: 'lines' })
  })

  test('an unknown op, listing the valid ones', () => {
    const e = rejects(job(src('lines'), { id: 'm', op: 'mapp', input: 'lines', fn: 'x => x' }, count('n', 'm')),
      'UNKNOWN_OP', '"m"', '"mapp"')
    for (const op of OPS) expect(e.message).toContain(op)
    expect(e.details).toEqual({ node_id: 'm' })
  })

  test('an op outside the supported set', () => {
    const req = job(src('a'), src('b'), { id: 'j', op: 'join', inputs: ['a', 'b'] }, count('n', 'j'))
    expect(() => validateJob(req)).not.toThrow()   // every op is supported by default
    expect(() => validateJob(req, SUPPORTED_OPS)).not.toThrow()   // and by this version
    const e = apiError(() => validateJob(req, new Set([...SUPPORTED_OPS].filter(op => op !== 'join'))))
    expect(e.code).toBe('UNSUPPORTED_OP')
    expect(e.message).toContain('"j"')
    expect(e.message).toContain('"join"')
    expect(e.details).toEqual({ node_id: 'j' })
  })

  test('an input that is not a node of the job', () => {
    const e = rejects(job(src('lines'), map('m', 'linez'), count('n', 'm')), 'DANGLING_INPUT', '"m"', '"linez"')
    expect(e.details).toEqual({ node_id: 'm', input: 'linez' })
    // also inside "inputs"
    rejects(job(src('a'), { id: 'u', op: 'union', inputs: ['a', 'ghost'] }, count('n', 'u')), 'DANGLING_INPUT', '"u"', '"ghost"')
  })

  test('a cycle a → b → c → a: details.nodes and the message follow the data flow', () => {
    const req = job(
      src('lines'),
      { id: 'a', op: 'union', inputs: ['lines', 'c'] },
      map('b', 'a'),
      map('c', 'b'),
      count('n', 'c'),
    )
    const e = rejects(req, 'DAG_CYCLE', 'a', 'b', 'c')
    const nodes = (e.details as { nodes: string[] }).nodes
    expect(nodes).toHaveLength(4)
    expect(new Set(nodes)).toEqual(new Set(['a', 'b', 'c']))   // the sink "n" is downstream, not in the cycle
    expectCycleInDataFlowOrder(req, nodes)
    expect(e.message).toContain(nodes.join(' → '))
  })

  test('a cycle found from every starting point is still in data-flow order', () => {
    // Rotating the request changes where the walk starts; the reported cycle must stay correct.
    const base: NodeSpec[] = [
      { id: 'a', op: 'union', inputs: ['lines', 'c'] }, map('b', 'a'), map('c', 'b'), count('n', 'c'), src('lines'),
    ]
    for (let r = 0; r < base.length; r++) {
      const req = job(...base.slice(r), ...base.slice(0, r))
      const e = rejects(req, 'DAG_CYCLE')
      expectCycleInDataFlowOrder(req, (e.details as { nodes: string[] }).nodes)
    }
  })

  test('a self-loop', () => {
    const req = job(src('lines'), { id: 'u', op: 'union', inputs: ['lines', 'u'] }, count('n', 'u'))
    const e = rejects(req, 'DAG_CYCLE', 'u → u')
    expect(e.details).toEqual({ nodes: ['u', 'u'] })
  })

  test('a sink with consumers', () => {
    const e = rejects(job(src('lines'), count('n', 'lines'), map('after', 'n'), count('n2', 'after')),
      'INVALID_JOB', 'sink "n"', '"after"', 'consumers')
    expect(e.details).toEqual({ node_id: 'n' })
  })

  test('a node that nothing consumes', () => {
    const e = rejects(job(src('lines'), map('unused', 'lines'), count('n', 'lines')), 'INVALID_JOB', '"unused"', 'sink')
    expect(e.details).toEqual({ node_id: 'unused' })
  })

  test('a job with no sink', () => {
    // In a non-empty acyclic job without a sink, some node has no consumer: that is what is named.
    rejects(job(src('lines'), map('m', 'lines')), 'INVALID_JOB', '"m"', 'connect it to a sink')
    // An empty node list only reaches here when the schema was bypassed.
    rejects({ nodes: [] }, 'INVALID_JOB', 'no sink')
  })

  test('a function op without fn', () => {
    const e = rejects(job(src('lines'), { id: 'm', op: 'map', input: 'lines' }, count('n', 'm')), 'INVALID_JOB', '"m"', '"fn"')
    expect(e.details).toEqual({ node_id: 'm' })
    rejects(job(src('lines'), { id: 'k', op: 'key_by', input: 'lines' }, count('n', 'k')), 'INVALID_JOB', '"k"', '"fn"')
  })

  test.each([
    ['x =>'],
    ['x => x; evil()'],
    [''],
    ['   '],
    ['function ('],
  ])('fn source that does not parse: %p', fn => {
    const e = rejects(job(src('lines'), map('m', 'lines', fn), count('n', 'm')), 'BAD_FUNCTION', '"m"', '"fn"')
    expect(e.details).toEqual({ node_id: 'm' })
  })

  test('a sort key that does not parse names the "key" field', () => {
    rejects(job(src('lines'), { id: 's', op: 'sort', input: 'lines', key: 'x =>' }, count('n', 's')), 'BAD_FUNCTION', '"s"', '"key"')
  })

  test.each([
    ['../x'],
    ['/etc/passwd'],
    ['a/../../b'],
    ['..'],
    ['books/\0.txt'],
  ])('a path outside the data dir: %p', path => {
    const e = rejects(job(src('lines', path), count('n', 'lines')), 'PATH_OUTSIDE_DATA_DIR', '"lines"', path)
    expect(e.details).toEqual({ node_id: 'lines', path })
    // write sinks too
    rejects(job(src('lines'), { id: 'out', op: 'write_text', input: 'lines', path }), 'PATH_OUTSIDE_DATA_DIR', '"out"')
  })

  test('a path op without path', () => {
    rejects(job({ id: 'lines', op: 'read_text' }, count('n', 'lines')), 'INVALID_JOB', '"lines"', '"path"')
    rejects(job(src('lines'), { id: 'out', op: 'write_jsonl', input: 'lines' }), 'INVALID_JOB', '"out"', '"path"')
  })

  test('a source with an input', () => {
    rejects(job(src('a'), { id: 'b', op: 'read_text', path: 'x', input: 'a' }, count('n', 'b'), count('m', 'a')),
      'INVALID_JOB', '"b"', 'source')
  })

  test('a narrow op without an input', () => {
    rejects(job(src('lines'), { id: 'm', op: 'map', fn: 'x => x' }, count('n', 'm'), count('k', 'lines')),
      'INVALID_JOB', '"m"', 'needs an input')
  })

  test('a join with one input', () => {
    rejects(job(src('a'), { id: 'j', op: 'join', input: 'a' }, count('n', 'j')), 'INVALID_JOB', '"j"', 'exactly two')
    rejects(job(src('a'), { id: 'j', op: 'join', inputs: ['a'] }, count('n', 'j')), 'INVALID_JOB', '"j"', 'exactly two')
  })

  test('a single-input op given several inputs', () => {
    rejects(job(src('a'), src('b'), { id: 'm', op: 'map', inputs: ['a', 'b'], fn: 'x => x' }, count('n', 'm')),
      'INVALID_JOB', '"m"', 'takes one input')
  })

  test('"input" and "inputs" both given', () => {
    rejects(job(src('a'), src('b'), { id: 'u', op: 'union', input: 'a', inputs: ['a', 'b'] }, count('n', 'u')),
      'INVALID_JOB', '"u"', '"input"', '"inputs"')
  })
})

describe('validateJob accepts', () => {
  test('paths that stay inside the data dir', () => {
    expect(checkDataPath('x', 'books/../books/a.txt')).toBe('books/a.txt')
    expect(checkDataPath('x', '..foo/bar')).toBe('..foo/bar')
    expect(checkDataPath('x', './books/**/*.txt')).toBe('books/**/*.txt')
  })

  test('function sources that parse, with params in scope', () => {
    expect(checkFunctionSource('x => x')).toBeNull()
    expect(checkFunctionSource('([w, n]) => n >= params.min_count')).toBeNull()
    expect(checkFunctionSource('function (a, b) { return a + b }')).toBeNull()
    expect(checkFunctionSource('x => x // trailing comment')).toBeNull()
  })

  // The source must not close the wrapper's parenthesis itself and smuggle in a second expression.
  test('a source that closes the wrapper\'s parenthesis is refused at submit', () => {
    expect(checkFunctionSource('x => x), (1')).not.toBeNull()
    expect(checkFunctionSource('x => x), console.log("side effect"), (y => y')).not.toBeNull()
  })
})

describe('topological order', () => {
  test('a chain given in reverse order', () => {
    const v = validateJob(job(count('n', 'c'), map('c', 'b'), map('b', 'a'), map('a', 'lines'), src('lines')))
    expect(v.order).toEqual(['lines', 'a', 'b', 'c', 'n'])
    expectTopological(v)
  })

  test('a diamond: both branches after the fork, the merge after both', () => {
    const v = validateJob(job(
      { id: 'merge', op: 'union', inputs: ['left', 'right'] },
      count('n', 'merge'),
      map('right', 'lines'),
      map('left', 'lines'),
      src('lines'),
    ))
    expectTopological(v)
    expect(v.order[0]).toBe('lines')
    expect(v.order.slice(-2)).toEqual(['merge', 'n'])
    expect(v.inputsOf.get('merge')).toEqual(['left', 'right'])
    expect(v.consumersOf.get('lines')).toEqual(['right', 'left'])
  })

  test('a wide DAG with a join of two keyed branches and several sinks', () => {
    const v = validateJob(job(
      src('a'), src('b'),
      { id: 'ka', op: 'key_by', input: 'a', fn: 'x => x' },
      { id: 'kb', op: 'key_by', input: 'b', fn: 'x => x' },
      { id: 'j', op: 'join', inputs: ['ka', 'kb'] },
      { id: 'r', op: 'reduce_by_key', input: 'j', fn: '(x, y) => x' },
      count('n1', 'r'), count('n2', 'j'), { id: 'c', op: 'collect', input: 'a' },
    ))
    expectTopological(v)
  })

  test('ties keep the request order', () => {
    // Three independent sources, then three consumers of one node: each group in request order.
    const v = validateJob(job(
      src('s3'), src('s1'), src('s2'),
      { id: 'u', op: 'union', inputs: ['s1', 's2', 's3'] },
      count('z', 'u'), count('a', 'u'), { id: 'm', op: 'collect', input: 'u' },
    ))
    expect(v.order).toEqual(['s3', 's1', 's2', 'u', 'z', 'a', 'm'])
    // The same job in another order gives the order of that request: plans are stable per request.
    const w = validateJob(job(
      src('s1'), src('s2'), src('s3'),
      { id: 'm', op: 'collect', input: 'u' }, count('a', 'u'), count('z', 'u'),
      { id: 'u', op: 'union', inputs: ['s1', 's2', 's3'] },
    ))
    expect(w.order).toEqual(['s1', 's2', 's3', 'u', 'm', 'a', 'z'])
  })

  test('the same request always gives the same order', () => {
    const req = job(src('b'), src('a'), { id: 'u', op: 'union', inputs: ['a', 'b'] }, count('n', 'u'), count('m', 'a'))
    expect(validateJob(req).order).toEqual(validateJob(req).order)
    expect(validateJob(req).order).toEqual(['b', 'a', 'u', 'm', 'n'])
  })
})

describe('outputs that collide are refused at submit, naming both nodes', () => {
  const write = (id: string, input: string, path: string, op: 'write_text' | 'write_jsonl' = 'write_text'): NodeSpec => ({ id, op, input, path, overwrite: true })
  const conflict = (req: JobRequest, a: string, b: string): ApiError => {
    const e = rejects(req, 'OUTPUT_CONFLICT', `"${a}"`, `"${b}"`)
    expect([e.details.node_id, e.details.other_node_id].sort()).toEqual([a, b].sort())
    return e
  }
  test('two sinks writing the same path, also spelled differently', () => {
    conflict(job(src('l'), write('a', 'l', 'out/x'), write('b', 'l', 'out/x', 'write_jsonl')), 'a', 'b')
    conflict(job(src('l'), write('a', 'l', 'out/x'), write('b', 'l', './out//x/')), 'a', 'b')
  })
  test('one output nested inside another, either way round', () => {
    conflict(job(src('l'), write('a', 'l', 'out'), write('b', 'l', 'out/inner')), 'a', 'b')
    conflict(job(src('l'), write('a', 'l', 'out/inner/deep'), write('b', 'l', 'out')), 'a', 'b')
  })
  test('an output that is, contains or lies inside a plain input', () => {
    conflict(job(src('l', 'data/in.txt'), write('w', 'l', 'data/in.txt')), 'l', 'w')
    conflict(job(src('l', 'data/in.txt'), write('w', 'l', 'data')), 'l', 'w')
    conflict(job(src('l', 'data'), write('w', 'l', 'data/out')), 'l', 'w')
  })
  test('an output a glob input could read: inside its literal prefix, or matched by its pattern', () => {
    conflict(job(src('l', 'in/*'), write('w', 'l', 'in/out')), 'l', 'w')
    conflict(job(src('l', 'in/*/*.txt'), write('w', 'l', 'in/out')), 'l', 'w')
    conflict(job(src('l', 'in/*.txt'), write('w', 'l', 'in')), 'l', 'w')
    conflict(job(src('l', '**/*.txt'), write('w', 'l', 'out/x')), 'l', 'w')
    conflict(job(src('l', 'logs-*/day.txt'), write('w', 'l', 'logs-out')), 'l', 'w')
    conflict(job(src('l', 'in/{a,b}/*.txt'), write('w', 'l', 'in/c')), 'l', 'w')
  })
  test('an output of the data dir itself', () => {
    for (const path of ['.', './', 'a/..']) {
      const e = rejects(job(src('l'), write('w', 'l', path)), 'OUTPUT_CONFLICT', '"w"', 'data dir')
      expect(e.details.node_id).toBe('w')
    }
    rejects(job(src('l'), { id: 'w', op: 'write_text', input: 'l', path: '' }), 'INVALID_JOB', '"w"')
  })
  test('outputs beside each other and beside their inputs are accepted', () => {
    expect(() => validateJob(job(src('l', 'in/*.txt'), write('a', 'l', 'out/a'), write('b', 'l', 'out/ab'), write('c', 'l', 'in2')))).not.toThrow()
    expect(() => validateJob(job(src('l', '*.txt'), write('a', 'l', 'out/a')))).not.toThrow()
    // inside the glob's folder, but no name the pattern can match
    expect(() => validateJob(job(src('l', 'in/*.txt'), write('a', 'l', 'in/out')))).not.toThrow()
    expect(() => validateJob(job(src('l', 'logs-*/day.txt'), write('a', 'l', 'out')))).not.toThrow()
    expect(() => validateJob(job(src('l', 'data/in.txt'), src('m', 'data/in.txt'), { id: 'u', op: 'union', inputs: ['l', 'm'] }, write('a', 'u', 'data2')))).not.toThrow()
  })
})

test('"allow_empty" belongs to sources only, and is true or false', () => {
  const withAllow = (n: NodeSpec, v: unknown): NodeSpec => ({ ...n, allow_empty: v } as NodeSpec)
  expect(() => validateJob(job(withAllow(src('l'), true), count('n', 'l')))).not.toThrow()
  rejects(job(src('l'), withAllow(map('m', 'l'), true), count('n', 'm')), 'INVALID_JOB', '"m"', 'allow_empty')
  rejects(job(withAllow(src('l'), 'yes'), count('n', 'l')), 'INVALID_JOB', '"l"', 'allow_empty')
})
