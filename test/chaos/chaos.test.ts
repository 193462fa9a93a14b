// The fault campaign's small version, run with the tests: two seeded schedules of worker kills,
// hung peers, master restarts and cancels under a mix of jobs. `npm run chaos` runs long ones.
import { expect, test } from 'bun:test'
import { runCampaign, table } from './campaign'

test('two fault schedules: no wrong answer, no stuck job, no leak', async () => {
  const lines: string[] = []
  const rep = await runCampaign({ seeds: 2, firstSeed: 1, faultSeconds: 15, log: l => lines.push(l) })
  console.log(`${lines.join('\n')}\n${table(rep)}`)
  expect(rep.schedules.length).toBe(2)
  const faults = rep.schedules.reduce((n, s) => n + Object.values(s.faults).reduce((a, b) => a + b, 0), 0)
  expect(faults).toBeGreaterThan(5)
  expect(rep.schedules.flatMap(s => s.wrong)).toEqual([])
  expect(rep.schedules.flatMap(s => s.stuck)).toEqual([])
  expect(rep.schedules.flatMap(s => s.leaks)).toEqual([])
  expect(rep.schedules.reduce((n, s) => n + s.succeeded, 0)).toBeGreaterThan(0)
}, 300_000)
