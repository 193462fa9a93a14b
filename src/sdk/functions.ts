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

/**
 * The source the worker compiles for `fn`. A function that declares one parameter more than the
 * op passes (`(x, p) => x > p.min`) gets the job's params as that parameter: the source is wrapped
 * so that the engine's call `f(x)` becomes `user(x, params)`.
 */
export function functionSource(fn: unknown, arity: Arity, where: string): string {
  if (typeof fn !== 'function') throw new FunctionSourceError(`${where}: expected a function, got ${fn === null ? 'null' : typeof fn}`)
  const source = expressionSource(fn as (...a: unknown[]) => unknown, where)
  checkClosedOver(source, where)
  if (fn.length <= arity) return source
  const args = arity === 1 ? 'x' : 'a, b'
  return `((f) => (${args}) => f(${args}, params))(${source})`
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

/** Refuses a function that reads names it neither declares nor gets from the worker's globals. */
function checkClosedOver(source: string, where: string): void {
  const program = parse(`(${source}\n)`, PARSE) as unknown as ESTree.Program
  const scopes = analyze(program, { ecmaVersion: 2022, sourceType: 'script' })
  const free = new Set<string>()
  for (const ref of scopes.globalScope?.through ?? []) {
    if (!FUNCTION_GLOBALS.has(ref.identifier.name)) free.add(ref.identifier.name)
  }
  if (free.size === 0) return
  const names = [...free]
  const list = names.map(n => `"${n}"`).join(', ')
  const example = names.map(n => `${n}`).join(', ')
  throw new FunctionSourceError(
    `${where} uses ${list}, defined outside the function: functions travel to the workers as source and see only ` +
    `\`params\`. Pass the value with .withParams({ ${example} }) and read it as params.${names[0]} ` +
    `(or as the function's last parameter: (x, p) => ... p.${names[0]})`)
}
