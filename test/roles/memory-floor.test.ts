// The smallest --max-mem a worker honours grows with its task slots, and a worker below it says so
// at start instead of passing the budget silently.
import { describe, expect, test } from 'bun:test'
import { JSC_RAM_MIN_BYTES, MARGIN_MIB, PER_SLOT_MIB, RUNTIME_BASE_MIB, floorWarning, jscRamBytes, maxMemFloorMiB } from '../../src/roles/memory-floor'
import { cliCommand } from '../support/cluster'

describe('the --max-mem floor', () => {
  test('grows with the slots; none while the runtime alone fits the margin', () => {
    expect(maxMemFloorMiB(1)).toBe(Math.max(0, RUNTIME_BASE_MIB + PER_SLOT_MIB - MARGIN_MIB))
    expect(maxMemFloorMiB(2)).toBe(0)
    expect(maxMemFloorMiB(4)).toBe(RUNTIME_BASE_MIB + 4 * PER_SLOT_MIB - MARGIN_MIB)
    expect(maxMemFloorMiB(8)).toBeGreaterThan(maxMemFloorMiB(4))
  })

  test('a budget under the floor is named; at or above it, nothing is said', () => {
    const floor = maxMemFloorMiB(4)
    expect(floorWarning((floor - 1) * 2 ** 20, 4)).toStartWith(`--max-mem below ${floor}MiB is not honoured: the runtime needs about ${floor} MiB`)
    expect(floorWarning(floor * 2 ** 20, 4)).toBeNull()
    expect(floorWarning(32 * 2 ** 20, 2)).toBeNull()
  })

  test('a worker started below it says so on stderr before it listens', async () => {
    const floor = maxMemFloorMiB(8)
    const proc = Bun.spawn(cliCommand(['worker', '--master', 'http://127.0.0.1:1', '--port', '0', '--slots', '8', '--max-mem', `${floor - 16}MiB`,
      '--work-dir', `/tmp/ms-floor-${process.pid}`]), { stdout: 'pipe', stderr: 'pipe' })
    try {
      const reader = proc.stderr.getReader()
      let text = ''
      const deadline = Date.now() + 15_000
      while (!text.includes('not honoured') && Date.now() < deadline) {
        const r = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => ({ done: true, value: undefined }))])
        if (r.done) break
        text += new TextDecoder().decode(r.value)
      }
      expect(text).toContain(`--max-mem below ${floor}MiB is not honoured: the runtime needs about ${floor} MiB`)
    } finally {
      proc.kill('SIGKILL')
      await proc.exited
      Bun.spawnSync(['rm', '-rf', `/tmp/ms-floor-${process.pid}`])
    }
  }, 20_000)
})

describe('the memory a worker states to JavaScriptCore', () => {
  const MiB = 2 ** 20
  const machine = 24 * 1024 * MiB
  test('a heap doubles after a collection only while under the budget (JSC: under a quarter of its RAM)', () => {
    for (const budget of [32 * MiB, 256 * MiB, 1024 * MiB, 4096 * MiB]) {
      const ram = jscRamBytes(budget, machine)!
      expect(ram / 4).toBeLessThanOrEqual(budget)
      // not so small that a heap under the budget collects more often than it used to
      expect(ram / 4).toBeGreaterThanOrEqual(budget)
    }
  })
  test('never below a floor, and nothing stated when the machine has no more', () => {
    expect(jscRamBytes(1 * MiB, machine)).toBe(JSC_RAM_MIN_BYTES)
    expect(jscRamBytes(8 * 1024 * MiB, machine)).toBeNull()
    expect(jscRamBytes(32 * MiB, 100 * MiB)).toBeNull()
  })
})
