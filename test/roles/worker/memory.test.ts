// The worker's memory policy with plain numbers: when running tasks are told to spill.
import { describe, expect, test } from 'bun:test'
import { MIN_RESUME_GAP_BYTES, PAUSE_FRACTION, PAUSE_HEADROOM_BYTES, PRESSURE_GRACE_MS, PRESSURE_MIN_HELD_FRACTION, pauseMarks, pressureDecision } from '../../../src/roles/worker/memory'
import { MARGIN_MIB, PER_SLOT_MIB, RUNTIME_BASE_MIB } from '../../../src/roles/memory-floor'

const MiB = 1 << 20

describe('pressureDecision', () => {
  const mark = 900 * MiB
  const spillAt = 700 * MiB
  const enough = PRESSURE_MIN_HELD_FRACTION * spillAt

  test('raises only past the mark', () => {
    expect(pressureDecision(mark, mark, spillAt, spillAt, 10_000, -Infinity)).toBe(false)
    expect(pressureDecision(mark + 1, mark, spillAt, spillAt, 10_000, -Infinity)).toBe(true)
  })

  test('raises only while the tasks hold enough to make a spill worth it', () => {
    expect(pressureDecision(2 * mark, mark, enough - 1, spillAt, 10_000, -Infinity)).toBe(false)
    expect(pressureDecision(2 * mark, mark, enough, spillAt, 10_000, -Infinity)).toBe(true)
  })

  test('not again within the grace period after a raise', () => {
    expect(pressureDecision(2 * mark, mark, spillAt, spillAt, 10_000 + PRESSURE_GRACE_MS - 1, 10_000)).toBe(false)
    expect(pressureDecision(2 * mark, mark, spillAt, spillAt, 10_000 + PRESSURE_GRACE_MS, 10_000)).toBe(true)
  })
})

describe('pauseMarks', () => {
  const MiB = 1024 * 1024
  test('under a small budget the pause mark keeps PAUSE_HEADROOM_BYTES below the bound; under a large one it is the runtime plus PAUSE_FRACTION of the budget', () => {
    const bound = (maxMem: number): number => maxMem + MARGIN_MIB * MiB
    for (const maxMem of [32 * MiB, 48 * MiB]) {
      const m = pauseMarks(maxMem, 2)
      expect(m.pauseAtBytes).toBe(bound(maxMem) - PAUSE_HEADROOM_BYTES)
      expect(m.resumeAtBytes).toBeLessThanOrEqual(m.pauseAtBytes - MIN_RESUME_GAP_BYTES)
    }
    const large = pauseMarks(1024 * MiB, 2)
    expect(large.pauseAtBytes).toBe((RUNTIME_BASE_MIB + 2 * PER_SLOT_MIB) * MiB + PAUSE_FRACTION * 1024 * MiB)
    expect(large.pauseAtBytes).toBeLessThan(bound(1024 * MiB) - PAUSE_HEADROOM_BYTES)
  })
})
