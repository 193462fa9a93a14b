// Turns the SDK user's functions into the `fn` source text of a JobRequest, and refuses, before
// anything is submitted, a function that could not run on a worker: one that reads a variable of
// the program that wrote it (a closure), one that is not a function expression, or an async one.
// It does not check what the function does with its records: that fails, with node and record,
// on the workers.
//
// Why a parser: a function's free variables are resolved when it runs, never when it is compiled,
// so `new Function('params', src)` accepts `x => x > min` and only a worker would find `min`
// missing. A scope analysis of the parsed source finds every name the function does not declare
// itself; anything that is not `params` or a global of the worker's JavaScript is refused.
import { parse, type Options } from 'acorn'
import { analyze } from 'eslint-scope'
import type * as ESTree from 'estree'
// The same globals the master allows at submit (JSON jobs are checked there).
import { FUNCTION_GLOBALS } from '../engine/udf-scope'

export class FunctionSourceError extends Error {
  override readonly name = 'FunctionSourceError'
}

/** How many record arguments the engine passes to the function of each op. */
export type Arity = 1 | 2

const PARSE: Options = { ecmaVersion: 'latest', sourceType: 'script', ranges: true }

/** Functions of the program shipped with a step (withHelpers): name → function. */
export type Helpers = Readonly<Record<string, unknown>>

/**
 * The source the worker compiles for `fn`. A function that declares one parameter more than the
 * op passes (`(x, p) => x > p.min`) gets the job's params as that parameter: the source is wrapped
 * so that the engine's call `f(x)` becomes `user(x, params)`. Helpers the function calls (and
 * those they call) travel in front of it, as constants of a scope the function closes over.
 */
export function functionSource(fn: unknown, arity: Arity, where: string, helpers: Helpers = {}): string {
  if (typeof fn !== 'function') throw new FunctionSourceError(`${where}: expected a function, got ${fn === null ? 'null' : typeof fn}`)
  const source = expressionSource(fn as (...a: unknown[]) => unknown, where)
  const needed = neededHelpers(source, where, helpers)
  const args = arity === 1 ? 'x' : 'a, b'
  const body = fn.length <= arity ? source : `((f) => (${args}) => f(${args}, params))(${source})`
  if (needed.length === 0) return body
  const consts = needed.map(([name, src]) => `const ${name} = (${src});`).join('\n')
  return `(() => {\n${consts}\nreturn (${body})\n})()`
}

/** The helpers a function needs, transitively, as [name, source]; refuses any other free name. */
function neededHelpers(source: string, where: string, helpers: Helpers): [string, string][] {
  const out = new Map<string, string>()
  const queue: { source: string; where: string }[] = [{ source, where }]
  while (queue.length > 0) {
    const at = queue.shift()!
    const { names, called } = freeNames(at.source)
    const missing: string[] = []
    for (const name of names) {
      if (out.has(name)) continue
      if (!Object.hasOwn(helpers, name)) { missing.push(name); continue }
      const h = helpers[name]
      if (typeof h !== 'function') throw new FunctionSourceError(`helper "${name}" is ${h === null ? 'null' : typeof h}, not a function: pass values with .withParams({ ${name} })`)
      const src = expressionSource(h as (...a: unknown[]) => unknown, `helper "${name}"`)
      out.set(name, src)
      queue.push({ source: src, where: `helper "${name}"` })
    }
    if (missing.length > 0) throw closureError(at.where, missing, called)
  }
  return [...out]
}

/** What to do about names a function reads from its program: values go in params, functions ship as helpers. */
function closureError(where: string, names: readonly string[], called: ReadonlySet<string>): FunctionSourceError {
  const list = names.map(n => `"${n}"`).join(', ')
  const fns = names.filter(n => called.has(n))
  const values = names.filter(n => !called.has(n))
  const fixes: string[] = []
  if (values.length > 0) {
    fixes.push(`pass ${values.length === 1 ? 'the value' : 'the values'} with .withParams({ ${values.join(', ')} }) and read ${values.length === 1 ? 'it' : 'them'} as ` +
      `params.${values[0]} (or as the function's last parameter: (x, p) => ... p.${values[0]})`)
  }
  if (fns.length > 0) {
    fixes.push(`ship the function${fns.length === 1 ? '' : 's'} with .withHelpers({ ${fns.join(', ')} }) ` +
      '(a helper travels as its source too, so it may use params, globals and other helpers, nothing else)')
  }
  return new FunctionSourceError(
    `${where} uses ${list}, defined outside the function: functions travel to the workers as source and see only ` +
    `\`params\`. To fix it, ${fixes.join('; and ')}`)
}

/** The function's text as one function expression, or an error saying what to give instead. */
function expressionSource(fn: (...a: unknown[]) => unknown, where: string): string {
  let text = fn.toString().trim()
  if (/\{\s*\[native code\]\s*\}$/.test(text)) {
    throw new FunctionSourceError(`${where}: a built-in or bound function has no source to send to the workers: write it as an arrow function, such as x => x.trim()`)
  }
  if (text.startsWith('class')) throw new FunctionSourceError(`${where}: a class is not a function expression: pass an arrow function`)
  // Method shorthand ({ f(x) {...} }.f) prints as "f(x) {...}"; as a function expression it is "function f(x) {...}".
  if (/^(?:\*\s*)?[A-Za-z_$][\w$]*\s*\(/.test(text) && !/^(?:function|async)\b/.test(text)) {
    text = text.startsWith('*') ? `function* ${text.slice(1).trim()}` : `function ${text}`
  }
  let expr: ESTree.Expression
  try {
    const program = parse(`(${text}\n)`, PARSE) as unknown as ESTree.Program
    const stmt = program.body[0]
    if (program.body.length !== 1 || stmt?.type !== 'ExpressionStatement') throw new Error('not one expression')
    expr = stmt.expression
  } catch (e) {
    throw new FunctionSourceError(`${where}: the function's source does not parse as one function expression (${(e as Error).message}): pass an arrow function such as x => x * 2`)
  }
  if (expr.type !== 'ArrowFunctionExpression' && expr.type !== 'FunctionExpression') {
    throw new FunctionSourceError(`${where}: expected a function expression, got ${expr.type}: pass an arrow function such as x => x * 2`)
  }
  if (expr.async) throw new FunctionSourceError(`${where}: async functions are not supported: tasks call functions synchronously, record by record`)
  return text
}

/** The names a function reads but neither declares nor gets from the worker's globals; `called`
 *  holds those it calls by name (`f(x)`), which are functions of the program rather than values. */
function freeNames(source: string): { names: string[]; called: Set<string> } {
  const program = parse(`(${source}\n)`, PARSE) as unknown as ESTree.Program
  const scopes = analyze(program, { ecmaVersion: 2022, sourceType: 'script' })
  const free = new Set<string>()
  for (const ref of scopes.globalScope?.through ?? []) {
    if (!FUNCTION_GLOBALS.has(ref.identifier.name)) free.add(ref.identifier.name)
  }
  const called = new Set<string>()
  if (free.size > 0) walk(program, n => { if (n.type === 'CallExpression' && n.callee.type === 'Identifier' && free.has(n.callee.name)) called.add(n.callee.name) })
  return { names: [...free], called }
}

/** Visits every node of an ESTree (no library walker needed for one question). */
function walk(node: unknown, visit: (n: ESTree.Node) => void): void {
  if (node === null || typeof node !== 'object') return
  if (Array.isArray(node)) { for (const c of node) walk(c, visit); return }
  const n = node as ESTree.Node
  if (typeof n.type === 'string') visit(n)
  for (const [k, v] of Object.entries(n)) if (k !== 'range' && k !== 'loc' && v !== null && typeof v === 'object') walk(v, visit)
}
