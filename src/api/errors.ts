// API errors: one shape on the wire, one table from code to HTTP status.
import { t, type Static } from 'elysia'

export { ApiError, STATUS, type ErrorCode } from './error-codes'

export const ErrorBody = t.Object({
  error: t.Object({ code: t.String(), message: t.String() }, { additionalProperties: true }),
}, { $id: 'ErrorBody' })
export type ErrorBody = Static<typeof ErrorBody>

export const errorBody = (code: string, message: string, details: Record<string, unknown> = {}): ErrorBody =>
  ({ error: { ...details, code, message } })
