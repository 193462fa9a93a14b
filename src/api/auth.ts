// The cluster's shared secret (CONTRACT section 7): `Authorization: Bearer TOKEN` on every request
// but GET /health, compared in constant time.
import { timingSafeEqual } from 'node:crypto'

export const authHeaders = (token: string | undefined): Record<string, string> =>
  token === undefined ? {} : { authorization: `Bearer ${token}` }

export function tokenMatches(header: string | null, token: string): boolean {
  if (header === null || !header.startsWith('Bearer ')) return false
  const given = Buffer.from(header.slice(7))
  const want = Buffer.from(token)
  // Length is not secret (tokens are random strings of a known size); the bytes are.
  return given.length === want.length && timingSafeEqual(given, want)
}
