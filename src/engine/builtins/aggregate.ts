// agg_by_key and count_by_value: the engine's own combine functions, so the map side and the
// reduce side need no user function. Pure.
//
// Each is the same JavaScript function its UDF twin would be ("(a, b) => a + b", Math.min,
// Math.max), so results are identical to the twin's, bit for bit, in any combine order the
// engine picks. The built-ins only add a check: sum, min and max take numbers.
import { UdfError, describeRecord } from '../records'

export const AGGS = ['sum', 'count', 'min', 'max'] as const
export type Agg = (typeof AGGS)[number]

const sum = (a: unknown, b: unknown): unknown => (a as number) + (b as number)

/** How two partial results of one key combine (on either side of the shuffle). */
export function aggCombine(agg: Agg): (a: unknown, b: unknown) => unknown {
  switch (agg) {
    case 'sum': case 'count': return sum
    case 'min': return (a, b) => Math.min(a as number, b as number)
    case 'max': return (a, b) => Math.max(a as number, b as number)
  }
}

/** The map side's partial result of one value: a count of 1, or the number itself. */
export function aggValue(nodeId: string, agg: Agg, record: unknown, v: unknown): unknown {
  if (agg === 'count') return 1
  if (typeof v !== 'number') {
    throw new UdfError(nodeId, `agg_by_key with "agg": "${agg}" needs numbers as values, but got ${describeRecord(v).slice(0, 80)}: map the values to numbers first`, describeRecord(record))
  }
  return v
}
