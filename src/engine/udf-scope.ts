// What a function's source may use, checked at submit without running it. A function runs on the
// workers with `params` and the JavaScript globals in scope and nothing else, and a free variable
// is resolved only when the function runs: `new Function` accepts `l => l.length > minLen`, and
// then every task fails with a ReferenceError. A scope analysis of the parsed source finds every
// name the function does not declare; any that is not `params` or a global is refused. Syntax
// errors are reported at their line and column in the user's own text.
import { parseExpressionAt, parse, type Node, type Options } from 'acorn'
import { analyze } from 'eslint-scope'
import type * as ESTree from 'estree'

/** Globals a task thread has: the ECMAScript built-ins and the web APIs Bun gives every thread. */
export const FUNCTION_GLOBALS: ReadonlySet<string> = new Set([
  'params', 'globalThis', 'undefined', 'NaN', 'Infinity',
  'Object', 'Function', 'Array', 'Number', 'Boolean', 'String', 'Symbol', 'BigInt', 'Math', 'JSON', 'Date', 'RegExp',
  'Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'AggregateError',
  'Map', 'Set', 'WeakMap', 'WeakSet', 'WeakRef', 'FinalizationRegistry', 'Promise', 'Proxy', 'Reflect', 'Intl',
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Atomics', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray',
  'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array',
  'BigUint64Array', 'Iterator',
  'parseInt', 'parseFloat', 'isNaN', 'isFinite', 'encodeURI', 'encodeURIComponent', 'decodeURI', 'decodeURIComponent',
  'escape', 'unescape',
  'console', 'TextEncoder', 'TextDecoder', 'URL', 'URLSearchParams', 'structuredClone', 'atob', 'btoa', 'crypto',
  'performance', 'Buffer',
])

const OPTIONS: Options = { ecmaVersion: 'latest', sourceType: 'script', ranges: true, locations: true }

type Located = { line: number; column: number }

/** "line 2, column 7" (both from 1) with the line and a caret under the column. */
export function pointAt(source: string, at: Located): string {
  const text = source.split('\n')[at.line - 1] ?? ''
  // Long lines are cut around the column so the caret stays readable.
  const from = Math.max(0, at.column - 40)
  const shown = (from > 0 ? '…' : '') + text.slice(from, from + 80) + (text.length > from + 80 ? '…' : '')
  const caret = ' '.repeat(at.column - from + (from > 0 ? 1 : 0)) + '^'
  return `line ${at.line}, column ${at.column + 1}:\n  ${shown}\n  ${caret}`
}

/** Why the source is not one function expression that uses only params and globals; null if it is. */
export function checkFunctionScope(source: string): string | null {
  let expr: Node
  try {
    expr = parseExpressionAt(source, 0, OPTIONS)
  } catch (e) {
    const err = e as SyntaxError & { loc?: Located }
    const message = err.message.replace(/\s*\(\d+:\d+\)$/, '')
    return `the function does not parse: ${message} at ${err.loc ? pointAt(source, err.loc) : 'its start'}`
  }
  // Only comments and white space may follow the expression ("x => x; evil()" is refused).
  const rest = source.slice(expr.end)
  try {
    if ((parse(rest, OPTIONS) as unknown as ESTree.Program).body.length > 0) throw new Error('more')
  } catch {
    return `unexpected text after the function expression at ${pointAt(source, locate(source, expr.end))}`
  }
  // Not checked: that it is a function. An expression may compute one ("(re => l => re.test(l))(
  // new RegExp(params.p))"), and evaluating it is the worker's business (compileUdf says what it got).
  const e = expr as unknown as ESTree.Expression
  const program = { type: 'Program', sourceType: 'script', body: [{ type: 'ExpressionStatement', expression: e, range: [expr.start, expr.end] }], range: [expr.start, expr.end] } as unknown as ESTree.Program
  const scopes = analyze(program, { ecmaVersion: 2022, sourceType: 'script' })
  const free = new Map<string, Located>()
  for (const ref of scopes.globalScope?.through ?? []) {
    const name = ref.identifier.name
    const loc = (ref.identifier as unknown as { loc?: { start: Located } }).loc?.start
    if (!FUNCTION_GLOBALS.has(name) && !free.has(name) && loc !== undefined) free.set(name, loc)
  }
  if (free.size === 0) return null
  const [first, at] = [...free][0]!
  const names = [...free.keys()].map(n => `"${n}"`).join(', ')
  return `uses ${names}, which it does not define: a function runs on the workers with only \`params\` and the ` +
    `JavaScript globals in scope, so put the value in the job's "params" and read it as params.${first}; "${first}" is at ${pointAt(source, at)}`
}

function locate(source: string, offset: number): Located {
  const before = source.slice(0, offset).split('\n')
  return { line: before.length, column: before[before.length - 1]!.length }
}
