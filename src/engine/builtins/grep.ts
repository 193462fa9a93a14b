// grep: the lines a regular expression matches (RegExp.test, per line). Pure.
//
// On the input's bytes, a chunk of lines is decoded once into one string and the expression
// searches that string; only the lines holding a match become strings of their own, as grep and
// DuckDB's late materialisation do. That equals testing each line alone only when no match can
// cross or touch a line break and every assertion reads a line break as it reads the end of a
// line: `lineSafe` accepts an expression only if it can tell so from the source (literal
// characters, classes without "^", ".", \d \w \S \b \B, groups, alternation, quantifiers; no
// ^ $ \s \W \D, negated classes, lookarounds or back references, no "m" or "s" flag). Any other
// expression tests the lines one by one, exactly as its UDF twin does.

export const GREP_FLAGS = /^[imsu]*$/

/** Why an expression cannot be a grep pattern, or null when it compiles. */
export function checkGrep(pattern: string, flags: string): string | null {
  if (!GREP_FLAGS.test(flags) || new Set(flags).size !== flags.length) return `"flags" may hold each of i, m, s, u once (not g or y: a test must not depend on the last match)`
  try {
    new RegExp(pattern, flags)
    return null
  } catch (e) {
    return `"pattern" is not a regular expression: ${(e as Error).message}`
  }
}

/** Whether a match of the expression lies within one line and sees line breaks as line ends. */
export function lineSafe(pattern: string, flags: string): boolean {
  if (flags.includes('m') || flags.includes('s')) return false
  let inClass = false
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    const code = pattern.charCodeAt(i)
    if (code < 0x20 || code === 0x2028 || code === 0x2029) return false
    if (c === '\\') {
      const e = pattern[++i]
      if (e === undefined) return false
      if (/[a-zA-Z0-9]/.test(e) && !/[dwSbB]/.test(e)) return false
      if (inClass && e === 'b') return false // [\b] is a backspace
      continue
    }
    if (inClass) {
      if (c === ']') inClass = false
      continue
    }
    if (c === '[') {
      if (pattern[i + 1] === '^') return false
      inClass = true
      continue
    }
    if (c === '^' || c === '$') return false
    if (c === '(' && pattern[i + 1] === '?' && pattern[i + 2] !== ':') return false
  }
  return true
}

/** Tests lines: the matching ones come out as strings, in order. */
export class LineMatcher {
  private readonly re: RegExp
  private readonly search: RegExp | null
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true })

  constructor(pattern: string, flags: string) {
    this.re = new RegExp(pattern, flags)
    this.search = lineSafe(pattern, flags) ? new RegExp(pattern, flags + 'g') : null
  }

  /** One record. */
  test(line: string): boolean { return this.re.test(line) }

  /** The matching lines of a region (lines joined by '\n', each possibly ending in '\r'). */
  matchRegion(region: Uint8Array, out: string[]): void {
    const text = this.decoder.decode(region)
    const search = this.search
    if (search === null) {
      let start = 0
      for (;;) {
        const nl = text.indexOf('\n', start)
        const line = stripCr(text.slice(start, nl < 0 ? text.length : nl))
        if (this.re.test(line)) out.push(line)
        if (nl < 0) return
        start = nl + 1
      }
    }
    let pos = 0
    while (pos <= text.length) {
      search.lastIndex = pos
      const m = search.exec(text)
      if (m === null) return
      const start = m.index === 0 ? 0 : text.lastIndexOf('\n', m.index - 1) + 1
      let end = text.indexOf('\n', m.index)
      if (end < 0) end = text.length
      out.push(stripCr(text.slice(start, end)))
      pos = end + 1
    }
  }
}

function stripCr(line: string): string {
  return line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line
}
