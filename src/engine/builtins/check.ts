// What the master checks of a built-in node at submit, beyond its schema. Pure.
import type { NodeSpec } from '../../api/jobs'
import { AGGS } from './aggregate'
import { checkCsvSelection } from './csv'
import { checkGrep } from './grep'
import { parseWordPattern } from './words'

/** Why the node cannot run, or null. */
export function checkBuiltin(n: NodeSpec): string | null {
  switch (n.op) {
    case 'read_csv':
      return checkCsvSelection(n)
    case 'words': {
      const cls = n.pattern === undefined ? null : parseWordPattern(n.pattern)
      return typeof cls === 'string' ? cls : null
    }
    case 'grep':
      if (n.pattern === undefined) return 'needs "pattern": a regular expression'
      return checkGrep(n.pattern, n.flags ?? '')
    case 'key_by_field':
      return n.field === undefined ? 'needs "field": the field to key by' : null
    case 'agg_by_key':
      return n.agg === undefined || !(AGGS as readonly string[]).includes(n.agg) ? `needs "agg": one of ${AGGS.join(', ')}` : null
    case 'sort':
      if (n.by !== undefined && n.key !== undefined) return 'give the sort key as "key" (a function) or "by" (built-in), not both'
      if (n.by !== undefined && 'slice' in n.by && n.by.slice[1] < n.by.slice[0]) return '"by": {"slice": [start, end]} needs start <= end'
      return null
    default:
      return null
  }
}
