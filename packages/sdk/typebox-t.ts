// What the SDK's bundle gets for `import { t } from 'elysia'`: the schemas in src/api use only
// TypeBox's own builders, so the SDK carries TypeBox and not the server framework. Elysia's
// string formats (date-time...) are registered as importing Elysia would, so the client checks
// the master's answers exactly as the server's schemas say.
import 'elysia/type-system/format'
export { Type as t } from '@sinclair/typebox'
export type { Static } from '@sinclair/typebox'
