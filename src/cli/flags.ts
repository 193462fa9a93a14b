// Flag parsing for every subcommand: `--name value`, `--name=value` and boolean `--name`.
// Units are parsed here once: durations take ms/s/m, sizes take KiB/MiB/GiB.

import { parseRetention, type Retention } from '../roles/master/retention'

export class UsageError extends Error {}

export type FlagSpec = Record<string, 'string' | 'boolean'>
export type Parsed = { flags: Map<string, string | true>; positionals: string[] }

export function parseFlags(argv: readonly string[], spec: FlagSpec): Parsed {
  const flags = new Map<string, string | true>()
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith('--') || arg === '--') { positionals.push(arg); continue }
    const eq = arg.indexOf('=')
    const name = arg.slice(2, eq < 0 ? undefined : eq)
    const kind = spec[name]
    if (kind === undefined) throw new UsageError(`unknown flag --${name}: see --help`)
    if (kind === 'boolean') {
      if (eq >= 0) throw new UsageError(`flag --${name} takes no value`)
      flags.set(name, true)
    } else {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i]
      if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`flag --${name} needs a value`)
      flags.set(name, value)
    }
  }
  return { flags, positionals }
}

export function parseDurationMs(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text.trim())
  if (m === null) throw new UsageError(`--${flag} ${text}: give a duration such as 500ms, 3s or 2m`)
  const n = Number(m[1])
  const ms = m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000
  if (ms <= 0) throw new UsageError(`--${flag} ${text}: the duration must be above zero`)
  return Math.round(ms)
}

export function parseSizeBytes(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(B|KiB|MiB|GiB)?$/.exec(text.trim())
  if (m === null) throw new UsageError(`--${flag} ${text}: give a size such as 512MiB or 1GiB`)
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[(m[2] ?? 'B') as 'B' | 'KiB' | 'MiB' | 'GiB']
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

export function parseInteger(flag: string, text: string, min: number, max: number): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} ${text}: give a whole number from ${min} to ${max}`)
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
