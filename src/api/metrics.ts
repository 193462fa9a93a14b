// The Prometheus text exposition format (version 0.0.4), written by the master's and the workers'
// GET /metrics. Only the writing: what to measure is each role's business.

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export type Labels = Readonly<Record<string, string>>
export type Sample = readonly [Labels, number]

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

function series(name: string, labels: Labels, value: number): string {
  const entries = Object.entries(labels)
  const l = entries.length === 0 ? '' : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`
  return `${name}${l} ${formatValue(value)}`
}

/** Fixed buckets and their counts, for a histogram built up over time. */
export class Histogram {
  readonly counts: number[]
  sum = 0
  count = 0
  constructor(readonly bounds: readonly number[]) { this.counts = bounds.map(() => 0) }
  observe(v: number): void {
    this.sum += v
    this.count++
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) this.counts[i]!++
  }
  add(h: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += h.counts[i] ?? 0
    this.sum += h.sum
    this.count += h.count
  }
}

/** One exposition: each metric family once, with its HELP and TYPE lines. */
export class MetricsText {
  private readonly lines: string[] = []

  gauge(name: string, help: string, samples: number | readonly Sample[]): this {
    return this.family(name, help, 'gauge', samples)
  }

  counter(name: string, help: string, samples: number | readonly Sample[]): this {
    return this.family(name, help, 'counter', samples)
  }

  /** Cumulative buckets (`le`), then _sum and _count, per label set. */
  histogram(name: string, help: string, samples: readonly (readonly [Labels, Histogram])[]): this {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} histogram`)
    for (const [labels, h] of samples) {
      h.bounds.forEach((b, i) => this.lines.push(series(`${name}_bucket`, { ...labels, le: formatValue(b) }, h.counts[i]!)))
      this.lines.push(series(`${name}_bucket`, { ...labels, le: '+Inf' }, h.count))
      this.lines.push(series(`${name}_sum`, labels, h.sum), series(`${name}_count`, labels, h.count))
    }
    return this
  }

  toString(): string { return this.lines.join('\n') + '\n' }

  private family(name: string, help: string, type: 'gauge' | 'counter', samples: number | readonly Sample[]): this {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
    if (typeof samples === 'number') this.lines.push(series(name, {}, samples))
    else for (const [labels, v] of samples) this.lines.push(series(name, labels, v))
    return this
  }
}
