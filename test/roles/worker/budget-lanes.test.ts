// The shared memory budget's lanes (src/engine/spill/budget.ts) with real Bun Workers: a thread
// that holds budget and is terminated, or calls process.exit, gives it all back once the main
// thread reclaims its lane on the close event; one that released gives back nothing twice.
import { describe, expect, test } from 'bun:test'
import { SharedBudget, laneBytes, newBudgetBuffer, reclaimLane, reservedBytes } from '../../../src/engine/spill/budget'

const MiB = 1 << 20

async function holder(sab: SharedArrayBuffer, lane: number, bytes: number, end: 'loop' | 'exit' | 'release'): Promise<{ w: Worker; closed: Promise<void>; said: string[] }> {
  const w = new Worker(new URL('./fixtures/hold-budget.ts', import.meta.url).href)
  const said: string[] = []
  const closed = new Promise<void>(r => w.addEventListener('close', () => r()))
  await new Promise<void>(r => { w.onmessage = e => { said.push(e.data as string); if (e.data === (end === 'release' ? 'released' : 'holding')) r() }; w.postMessage({ sab, lane, bytes, end }) })
  return { w, closed, said }
}

describe('budget lanes', () => {
  test('terminated or exited threads: their lanes are reclaimed to zero; a live thread\'s share stays', async () => {
    const sab = newBudgetBuffer(4)
    const killed = await holder(sab, 0, 40 * MiB, 'loop')
    const exited = await holder(sab, 1, 30 * MiB, 'exit')
    const live = new SharedBudget(sab, 1 << 30, 0, 2)
    live.tryReserve(5 * MiB)
    await exited.closed
    killed.w.terminate()
    await killed.closed
    // Before the reclaim, what the dead held is still counted: this is the leak the lanes close.
    expect(reservedBytes(sab)).toBe(75 * MiB)
    expect(reclaimLane(sab, 0)).toBe(40 * MiB)
    expect(reclaimLane(sab, 1)).toBe(30 * MiB)
    expect(reservedBytes(sab)).toBe(5 * MiB)
    expect(laneBytes(sab, 2)).toBe(5 * MiB)
    live.releaseAll()
    expect(reservedBytes(sab)).toBe(0)
    expect(laneBytes(sab, 2)).toBe(0)
  })

  test('a thread that released everything: reclaiming its lane gives back nothing more', async () => {
    const sab = newBudgetBuffer(2)
    const other = new SharedBudget(sab, 1 << 30, 0, 1)
    other.tryReserve(3 * MiB)
    const done = await holder(sab, 0, 20 * MiB, 'release')
    done.w.terminate()
    await done.closed
    expect(reclaimLane(sab, 0)).toBe(0)
    expect(reservedBytes(sab)).toBe(3 * MiB)
  })

  test('a refused reservation leaves the lane as it was', () => {
    const sab = newBudgetBuffer(1)
    const b = new SharedBudget(sab, 1 * MiB, 0, 0)
    expect(b.tryReserve(1 * MiB)).toBe(true)
    expect(b.tryReserve(1 * MiB)).toBe(false)
    expect(laneBytes(sab, 0)).toBe(1 * MiB)
    expect(reservedBytes(sab)).toBe(1 * MiB)
  })
})
