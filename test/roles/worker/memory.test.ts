// The worker's memory policy with plain numbers: when running tasks are told to spill.
import { describe, expect, test } from 'bun:test'
import { PRESSURE_GRACE_MS, PRESSURE_MIN_HELD_FRACTION, pressureDecision } from '../../../src/roles/worker/memory'

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
