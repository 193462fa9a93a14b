// The retention rule of `--keep-jobs` (src/roles/master/retention.ts), pure, with the time given:
// the flag's syntax, and which ended jobs a cut removes, checked against a plain loop.
import { describe, expect, test } from 'bun:test'
import { DEFAULT_KEEP_JOBS, DEFAULT_RETENTION, parseRetention, prunedBy, pruneCut, type EndedJob } from '../../../src/roles/master/retention'
import { prng } from '../../support/prng'

const DAY = 86_400_000

describe('--keep-jobs syntax', () => {
  test('a count, an age, both in either order, or all', () => {
    expect(parseRetention('500')).toEqual({ maxJobs: 500, maxAgeMs: null })
    expect(parseRetention('7d')).toEqual({ maxJobs: null, maxAgeMs: 7 * DAY })
    expect(parseRetention('36h')).toEqual({ maxJobs: null, maxAgeMs: 36 * 3_600_000 })
    expect(parseRetention('90m')).toEqual({ maxJobs: null, maxAgeMs: 90 * 60_000 })
    expect(parseRetention(DEFAULT_KEEP_JOBS)).toEqual(DEFAULT_RETENTION)
    expect(parseRetention(' 10000 , 7d ')).toEqual(DEFAULT_RETENTION)
    expect(parseRetention('ALL')).toEqual({ maxJobs: null, maxAgeMs: null })
  })

  test('refused with a message naming the part: zero, nonsense, two counts, two ages, under a second', () => {
    for (const bad of ['0', '-5', '7x', '', '5,6', '1d,2d', '500ms', '1.5', 'all,5', '7 d']) {
      const r = parseRetention(bad)
      expect('error' in r).toBe(true)
    }
    expect(parseRetention('0')).toEqual({ error: expect.stringContaining('at least 1') })
    expect(parseRetention('5,6')).toEqual({ error: expect.stringContaining('two job counts') })
  })
})

describe('which ended jobs a cut removes', () => {
  const nowMs = 100 * DAY

  test('the default keeps the newest 10 000 of those ended within 7 days', () => {
    const cut = pruneCut(DEFAULT_RETENTION, nowMs)
    expect(cut).toEqual({ keepNewest: 10_000, endedBeforeMs: 93 * DAY })
    // Ended exactly 7 days ago: kept (strictly older goes).
    const jobs: EndedJob[] = [
      { id: 'old', seq: 1, finishedMs: 93 * DAY - 1 },
      { id: 'edge', seq: 2, finishedMs: 93 * DAY },
      { id: 'new', seq: 3, finishedMs: 99 * DAY },
    ]
    expect(prunedBy(cut, jobs)).toEqual(['old'])
  })

  test('the count keeps the newest by submission, not by end time', () => {
    const cut = pruneCut({ maxJobs: 2, maxAgeMs: null }, nowMs)
    const jobs: EndedJob[] = [
      { id: 'a', seq: 1, finishedMs: 50 * DAY },  // submitted first, ended last
      { id: 'b', seq: 2, finishedMs: 10 * DAY },
      { id: 'c', seq: 3, finishedMs: 20 * DAY },
    ]
    expect(prunedBy(cut, jobs)).toEqual(['a'])
  })

  test('a clock that moves on removes more; nothing is removed with "all"', () => {
    const r = { maxJobs: null, maxAgeMs: DAY }
    const jobs: EndedJob[] = [{ id: 'x', seq: 1, finishedMs: 10 * DAY }]
    expect(prunedBy(pruneCut(r, 11 * DAY), jobs)).toEqual([])
    expect(prunedBy(pruneCut(r, 11 * DAY + 1), jobs)).toEqual(['x'])
    expect(prunedBy(pruneCut({ maxJobs: null, maxAgeMs: null }, 1e15), jobs)).toEqual([])
  })

  test('random histories: the same set as a plain loop over the rule', () => {
    const rand = prng(7)
    for (let round = 0; round < 200; round++) {
      const n = Math.floor(rand() * 40)
      const jobs: EndedJob[] = Array.from({ length: n }, (_, i) => ({ id: `j${i}`, seq: i + 1, finishedMs: Math.floor(rand() * 20) * DAY }))
      const maxJobs = rand() < 0.3 ? null : 1 + Math.floor(rand() * 30)
      const maxAgeMs = rand() < 0.3 ? null : Math.floor(rand() * 20) * DAY
      const now = 20 * DAY
      const expected: string[] = []
      // Plain loop: walk from the newest submission down, counting what is kept.
      for (let i = n - 1, rank = 0; i >= 0; i--, rank++) {
        const j = jobs[i]!
        const tooMany = maxJobs !== null && rank >= maxJobs
        const tooOld = maxAgeMs !== null && now - j.finishedMs > maxAgeMs
        if (tooMany || tooOld) expected.push(j.id)
      }
      const shuffled = [...jobs].sort(() => rand() - 0.5)
      expect(prunedBy(pruneCut({ maxJobs, maxAgeMs }, now), shuffled)).toEqual(expected)
    }
  })
})
