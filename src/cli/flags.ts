// Flag parsing for every subcommand, with node's util.parseArgs: `--name value`, `--name=value`,
// boolean `--name`, `-h` for --help and `-v` for --version everywhere. Its errors become one-line
// usage errors that suggest the nearest flag. Units are parsed here once: durations take
// ms/s/m, sizes take B, k/m/g (KiB/MiB/GiB, as Spark and the JVM read them), KB/MB/GB and
// KiB/MiB/GiB.
import { parseArgs } from 'node:util'
import { nearest } from '../api/nearest'

import { parseRetention, type Retention } from '../roles/master/retention'
import { LOG_LEVELS, type LogLevel } from '../roles/log'

export class UsageError extends Error {}

export type FlagSpec = Record<string, 'string' | 'boolean'>
export type Parsed = { flags: Map<string, string | true>; positionals: string[] }

const SHORT: Readonly<Record<string, string>> = { help: 'h', version: 'v' }

export function parseFlags(argv: readonly string[], spec: FlagSpec, command: string): Parsed {
  const options = Object.fromEntries(Object.entries(spec).map(([name, type]) =>
    [name, SHORT[name] === undefined ? { type } : { type, short: SHORT[name] }]))
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] }
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true }) as typeof parsed
  } catch (e) {
    throw new UsageError(explain(e as Error & { code?: string }, spec, command))
  }
  const flags = new Map<string, string | true>()
  for (const [name, value] of Object.entries(parsed.values)) if (value !== undefined && value !== false) flags.set(name, value)
  return { flags, positionals: parsed.positionals }
}

function explain(e: Error & { code?: string }, spec: FlagSpec, command: string): string {
  const seeHelp = `see minispark ${command} --help`
  const flag = /'(-{1,2}[^' <]+)/.exec(e.message)?.[1] ?? ''
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const near = nearest(flag.replace(/^-+/, ''), Object.keys(spec))
    return `unknown flag ${flag}${near === null ? '' : `: did you mean --${near}?`} (${seeHelp})`
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (e.message.includes('does not take an argument')) return `flag ${flag} takes no value (${seeHelp})`
    return `flag ${flag} needs a value (${seeHelp})`
  }
  return `${e.message.split('\n')[0]} (${seeHelp})`
}

/** `--master` as a URL: `host:port` and `http://host:port` both work; a trailing slash is dropped. */
export function parseMasterUrl(flag: string, text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`
  let url: URL
  try { url = new URL(withScheme) } catch { throw new UsageError(`--${flag} ${text}: give the master as HOST:PORT or http://HOST:PORT`) }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--${flag} ${text}: the master speaks http:// (or https:// behind a proxy)`)
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') throw new UsageError(`--${flag} ${text}: give only HOST:PORT, without a path`)
  return `${url.protocol}//${url.host}`
}

export function parseDurationMs(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text.trim())
  if (m === null) throw new UsageError(`--${flag} ${text}: give a duration such as 500ms, 3s or 2m`)
  const n = Number(m[1])
  const ms = m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000
  if (ms <= 0) throw new UsageError(`--${flag} ${text}: the duration must be above zero`)
  return Math.round(ms)
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
}

export function parseSizeBytes(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  const unit = m === null ? undefined : SIZE_UNITS[(m[2] ?? '').toLowerCase() || 'b']
  if (m === null || unit === undefined) throw new UsageError(`--${flag} ${text}: give a size such as 512m, 1g, 512MiB or 1GB`)
  const bytes = Math.round(Number(m[1]) * unit)
  if (bytes <= 0) throw new UsageError(`--${flag} ${text}: the size must be above zero`)
  return bytes
}

/** `--keep-jobs`: a count, an age, both (`7d,10000`), or `all`; see roles/master/retention.ts. */
export function parseKeepJobs(flag: string, text: string): Retention {
  const r = parseRetention(text)
  if ('error' in r) throw new UsageError(`--${flag} ${text}: ${r.error}`)
  return r
}

/** `--log-level`: the least severe lines written (debug adds every task attempt's start and end). */
export function parseLogLevel(flag: string, text: string): LogLevel {
  const level = text.trim().toLowerCase()
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel
  const near = nearest(level, LOG_LEVELS)
  throw new UsageError(`--${flag} ${text}: give one of ${LOG_LEVELS.join(', ')}${near === null ? '' : ` (did you mean ${near}?)`}`)
}

export function parseInteger(flag: string, text: string, min: number, max: number): number {
  const n = Number(text)
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} ${text}: give a whole number from ${min} to ${max}`)
  return n
}

export const str = (p: Parsed, name: string, fallback: string): string => {
  const v = p.flags.get(name)
  return typeof v === 'string' ? v : fallback
}
export const bool = (p: Parsed, name: string): boolean => p.flags.get(name) === true
export const opt = (p: Parsed, name: string): string | undefined => {
  const v = p.flags.get(name)
  return typeof v === 'string' ? v : undefined
}
