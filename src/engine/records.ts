// Small helpers about records shared by operators: error records and keyed-pair checks.

/** Per-record failures carry the node and the record (cut to 1 KiB) so the job error can show them. */
export class UdfError extends Error {
  constructor(readonly nodeId: string, message: string, readonly record: string) {
    super(message)
  }
}

const RECORD_LIMIT = 1024

export function describeRecord(r: unknown): string {
  let s: string
  try {
    s = typeof r === 'string' ? JSON.stringify(r) : JSON.stringify(r) ?? String(r)
  } catch {
    s = String(r)
  }
  return s.length > RECORD_LIMIT ? s.slice(0, RECORD_LIMIT) : s
}

export function udfError(nodeId: string, e: unknown, record: unknown): UdfError {
  if (e instanceof UdfError) return e
  const message = e instanceof Error ? `${e.name}: ${e.message}` : `thrown: ${describeRecord(e)}`
  return new UdfError(nodeId, message, describeRecord(record))
}

export function notAPair(nodeId: string, op: string, record: unknown): UdfError {
  return new UdfError(nodeId, `${op} needs keyed records [key, value], but got ${describeRecord(record).slice(0, 80)}: add a map or key_by before it`, describeRecord(record))
}

export const isPair = (r: unknown): r is [unknown, unknown] => Array.isArray(r) && r.length === 2
