// The worker's heartbeat loop (CONTRACT section 3): every interval ± a third of it (3 ± 1 s by
// default), uniformly jittered so a fleet started together does not beat in step.
import type { Heartbeat, HeartbeatAck } from '../../api/heartbeat'
import { PeerError, type PeerClient } from '../../api/peers'

export type HeartbeatDeps = {
  masterUrl: string
  peers: PeerClient
  intervalMs: number
  rng: () => number
  body: () => Omit<Heartbeat, 'incarnation'>
  onAck: (ack: HeartbeatAck, previous: string | undefined) => void
  log: (msg: Record<string, unknown>) => void
  /** the master answered 401: this worker's token is wrong (or missing), and beating again cannot help */
  onRefused?: (message: string) => void
  /** whether this worker sends a token, for the message */
  hasToken?: boolean
}

export const nextDelayMs = (intervalMs: number, r: number): number => intervalMs * (2 / 3 + (2 / 3) * r)

export function startHeartbeats(deps: HeartbeatDeps): { stop(): void; beatNow(): Promise<void>; incarnation(): string | undefined } {
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  let incarnation: string | undefined
  let failures = 0
  const beat = async (): Promise<void> => {
    // "" on the first beat of this process: the master then knows any earlier incarnation is gone.
    const hb: Heartbeat = { ...deps.body(), incarnation: incarnation ?? '' }
    try {
      const ack = await deps.peers.heartbeat(deps.masterUrl, hb, deps.intervalMs)
      const previous = incarnation
      incarnation = ack.incarnation
      if (failures > 0) deps.log({ level: 'info', cause: 'heartbeat-restored', message: `the master answers again after ${failures} failed heartbeat(s)`, failed: failures })
      failures = 0
      deps.onAck(ack, previous)
    } catch (e) {
      if (e instanceof PeerError && e.status === 401 && deps.onRefused !== undefined) {
        stopped = true
        deps.onRefused(`the master at ${deps.masterUrl} refused this worker's token (401 UNAUTHORIZED): ` +
          `${deps.hasToken === true ? 'it is not the cluster\'s' : 'it needs one'}; give the cluster's token with --token-file FILE (or MINISPARK_TOKEN)`)
        return
      }
      // Keep beating: the master may be restarting; log once per outage, not every beat.
      if (failures++ === 0) deps.log({ level: 'warn', cause: 'heartbeat-failed', message: `heartbeat to the master failed: ${(e as Error).message}; beating on`, error: (e as Error).message })
    }
  }
  const loop = async (): Promise<void> => {
    await beat()
    if (!stopped) timer = setTimeout(loop, nextDelayMs(deps.intervalMs, deps.rng()))
  }
  void loop()
  return {
    stop() { stopped = true; if (timer) clearTimeout(timer) },
    beatNow: beat,
    incarnation: () => incarnation,
  }
}
