// The work dir's layout (src/roles/worker/layout.ts): node ids are user text, so their folder
// names must be one-to-one, never "." or "..", and never an internal folder's name.
import { describe, expect, test } from 'bun:test'
import { attemptDir, jobDir, pathName, shuffleDir } from '../../../src/roles/worker/layout'

describe('work dir layout', () => {
  test('one-to-one: names that the old escaping merged stay apart', () => {
    const ids = ['a/0', 'a_0', 'a:0', 'a.0', 'a 0', 'é', '_c3_a9', '', '_', '.', '..', 'spill', 'shuffle', 'attempts', 'ä/b', 'a%2F0']
    const names = ids.map(pathName)
    expect(new Set(names).size).toBe(ids.length)
    for (const n of names) {
      expect(n).toMatch(/^[A-Za-z0-9_-]+$/)
      expect(['.', '..', '']).not.toContain(n)
    }
  })

  test('a shuffle named like an internal folder, and attempts of one job, each get their own folder', () => {
    const w = '/work/w1'
    const internal = [shuffleDir(w, 'j', 'x').replace(/\/x$/, ''), attemptDir(w, 'j', 'x').replace(/\/x$/, '')]
    for (const node of ['attempts', 'shuffle', 'spill', '..', 'a/../../b']) {
      const d = shuffleDir(w, 'j', node)
      expect(d.startsWith(`${jobDir(w, 'j')}/shuffle/`)).toBe(true)
      expect(internal).not.toContain(d)
      expect(d.split('/').length).toBe(jobDir(w, 'j').split('/').length + 2)
    }
    expect(attemptDir(w, 'j', 'j:1:0:0')).not.toBe(attemptDir(w, 'j', 'j:1:1:0'))
    expect(attemptDir(w, 'j', 'j:1:0:0').startsWith(`${jobDir(w, 'j')}/attempts/`)).toBe(true)
  })
})
