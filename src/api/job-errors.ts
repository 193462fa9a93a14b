// Turns a schema failure of a submitted job into a message that says which node and what to fix.
// A node is checked against the union of every op's schema, and a failed union alone says only
// "Expected union value": here the node's own op picks the schema that explains it.
import { Value } from '@sinclair/typebox/value'
import { ValueErrorType } from '@sinclair/typebox/errors'
import type { ErrorCode } from './errors'
import { NODE_SCHEMAS, NodeSpec, OPS, fieldsOf, type Op } from './jobs'
import { didYouMean } from './nearest'

export type Explained = { code: ErrorCode; message: string; details: Record<string, unknown> }

const ALL_NODE_FIELDS = Object.keys(NodeSpec.properties)
const isOp = (op: unknown): op is Op => typeof op === 'string' && (OPS as readonly string[]).includes(op)

/** Explains why `body.nodes[i]` (at `path` "/nodes/i") is not a node of any op; null if it is not about a node. */
export function explainNodeError(body: unknown, path: string, describe: (schema: unknown, message: string) => string = (_, m) => m): Explained | null {
  const m = /^\/nodes\/(\d+)(?:\/|$)/.exec(path)
  if (m === null) return null
  const n = (body as { nodes?: unknown[] } | null)?.nodes?.[Number(m[1])]
  if (typeof n !== 'object' || n === null || Array.isArray(n)) return null
  const node = n as Record<string, unknown>
  const where = typeof node.id === 'string' ? `node "${node.id}"` : `node ${m[1]} (counting from 0)`
  const details = { node_id: typeof node.id === 'string' ? node.id : null, where: `/nodes/${m[1]}` }
  if (!isOp(node.op)) {
    const op = typeof node.op === 'string' ? `unknown op "${node.op}"` : 'no "op"'
    return { code: 'UNKNOWN_OP', message: `${where} has ${op}: ${typeof node.op === 'string' ? didYouMean(node.op, OPS) : ''}use one of ${OPS.join(', ')}`, details }
  }
  const op = node.op
  const fields = fieldsOf(op)
  // A misspelt field is the likelier story than the missing one it was meant to be ("inptu").
  const errors = [...Value.Errors(NODE_SCHEMAS[op], node)]
  const first = errors.find(e => e.type === ValueErrorType.ObjectAdditionalProperties) ?? errors[0]
  if (first === undefined) return null
  const field = first.path.split('/')[1] ?? ''
  const own = `${where} (${op})`
  switch (first.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const hint = didYouMean(field, fields)
      const elsewhere = ALL_NODE_FIELDS.includes(field) ? `${op} takes no "${field}"` : `unknown field "${field}"`
      // Right name, wrong op (a sort's "fn", a map's "inputs") is a job mistake; a typo is a bad request.
      return { code: ALL_NODE_FIELDS.includes(field) ? 'INVALID_JOB' : 'INVALID_REQUEST', message: `${own}: ${elsewhere}: ${hint}${op} takes ${fields.join(', ')}`, details: { ...details, field } }
    }
    case ValueErrorType.ObjectRequiredProperty: {
      const schema = (NODE_SCHEMAS[op].properties as Record<string, { description?: string }>)[field]
      return { code: 'INVALID_JOB', message: `${own} needs "${field}"${schema?.description ? `: ${schema.description}` : ''}`, details: { ...details, field } }
    }
    default:
      return { code: 'INVALID_REQUEST', message: `${own}, field "${field}": ${describe(first.schema, first.message)}`, details: { ...details, field } }
  }
}

/** For an unknown property anywhere else: the nearest known name of the same object, or ''. */
export function suggestProperty(schema: unknown, path: string): string {
  const properties = (schema as { properties?: Record<string, unknown> } | null)?.properties
  const name = path.split('/').pop()
  if (properties === undefined || name === undefined || name === '') return ''
  return didYouMean(name, Object.keys(properties)).trim()
}
