// User functions travel as source text. This module checks that source parses (at submit, on the
// master, without running it) and compiles it once per task (on workers). It does not sandbox:
// whoever may submit a job runs code on the workers by design (see the README on tokens).

export type Udf = (...args: unknown[]) => unknown

// The source is wrapped as the operand of a return, so a statement list such as "x => x; evil()"
// does not parse, and only `params` is in scope besides the globals. It must also parse inside
// brackets: a source that closes the parenthesis itself ("x => x), (1") cannot be valid in both.
const wrap = (source: string): string => `"use strict";\nreturn (\n${source}\n);`
const wrapBrackets = (source: string): string => `"use strict";\nreturn [\n${source}\n][0];`

/** Returns a message saying why the source is not a function expression, or null when it parses. */
export function checkFunctionSource(source: string): string | null {
  if (source.trim() === '') return 'the function source is empty: give a function expression such as "x => x"'
  try {
    new Function('params', wrap(source))
    new Function('params', wrapBrackets(source))
    return null
  } catch (e) {
    return `the function does not parse (${(e as Error).message}): give one JavaScript function expression such as "x => x * 2"`
  }
}

/** Compiles the source and checks that it evaluates to a function. Throws a TypeError saying what is wrong. */
export function compileUdf(source: string, params: Readonly<Record<string, unknown>>): Udf {
  const problem = checkFunctionSource(source)
  if (problem !== null) throw new TypeError(problem)
  const value: unknown = new Function('params', wrap(source))(params)
  if (typeof value !== 'function') {
    throw new TypeError(`the source evaluates to a ${typeof value}, not a function: give a function expression such as "x => x"`)
  }
  return value as Udf
}
