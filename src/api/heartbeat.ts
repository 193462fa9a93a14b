// The seed's heartbeat contract (CONTRACT section 3) and the worker registry view.
import { t, type Static } from 'elysia'
import { WorkerIdT } from './ids'

export const WorkerStatus = t.Union([t.Literal('IDLE'), t.Literal('BUSY'), t.Literal('PAUSED'), t.Literal('DEAD')])
export type WorkerStatus = Static<typeof WorkerStatus>

/** At most this many persisted blocks in one heartbeat: a full list may be cut short, and is not
 *  taken as saying which blocks are gone. */
export const HELD_BLOCKS_MAX = 65_536

export const Heartbeat = t.Object({
  worker_id: WorkerIdT,
  address: t.String({ minLength: 3, maxLength: 300, description: 'HOST:PORT where the worker serves tasks and shuffle data' }),
  status: t.Union([t.Literal('IDLE'), t.Literal('BUSY'), t.Literal('PAUSED')]),
  active_tasks: t.Integer({ minimum: 0 }),
  mem_usage_mb: t.Number({ minimum: 0 }),
  last_heartbeat: t.Number({ description: 'unix seconds on the worker clock' }),
  // Not in the seed's contract, optional so a plain seed heartbeat is still accepted.
  slots: t.Optional(t.Integer({ minimum: 1, maximum: 1024, description: 'task threads of this worker' })),
  incarnation: t.Optional(t.String({ maxLength: 64, description: 'the incarnation the master gave this worker; "" on the first heartbeat of a process' })),
  running: t.Optional(t.Array(t.String({ maxLength: 256 }), { maxItems: 4096, description: 'attempt ids queued, running, or finished with their report not yet acknowledged' })),
  disk_id: t.Optional(t.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._-]+$', description: 'the id of the worker\'s --data-dir: workers that share a folder share it; without one, the worker is taken to have a disk of its own' })),
  cached_memory_bytes: t.Optional(t.Integer({ minimum: 0, description: 'bytes of cached partitions held in memory (counted against --max-mem)' })),
  cached_disk_bytes: t.Optional(t.Integer({ minimum: 0, description: 'bytes of cached partitions held in the work dir' })),
  datasets: t.Optional(t.Array(t.Object({
    owner: t.String({ maxLength: 512 }), attempt: t.String({ maxLength: 256 }), where: t.Union([t.Literal('memory'), t.Literal('disk')]),
  }), { maxItems: HELD_BLOCKS_MAX, description: 'the blocks of persisted datasets this worker holds: the master marks the ones it does not hold any more as lost' })),
})
export type Heartbeat = Static<typeof Heartbeat>

export const HeartbeatAck = t.Object({
  ok: t.Literal(true),
  incarnation: t.String({ description: 'echo this in later heartbeats and task reports; a new one means: you rejoined, drop old work' }),
})
export type HeartbeatAck = Static<typeof HeartbeatAck>

export const WorkerInfo = t.Object({
  worker_id: t.String(),
  address: t.String(),
  status: WorkerStatus,
  active_tasks: t.Integer(),
  slots: t.Integer(),
  mem_usage_mb: t.Number(),
  last_heartbeat: t.Number({ description: 'master receive time, unix milliseconds' }),
  disk_id: t.Optional(t.String({ description: 'the id of its --data-dir; workers that share a folder share it' })),
  cached_memory_bytes: t.Optional(t.Integer({ description: 'bytes of cached partitions the worker holds in memory, as of its last heartbeat' })),
  cached_disk_bytes: t.Optional(t.Integer({ description: 'bytes of cached partitions the worker holds in its work dir' })),
})
export type WorkerInfo = Static<typeof WorkerInfo>
