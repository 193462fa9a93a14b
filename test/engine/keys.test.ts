import { describe, expect, test } from 'bun:test'
import { prng } from '../support/prng'
import { compareKeys, hashKey, KeyMap, partitionOf } from '../../src/engine/keys'

/** mulberry32: a seeded PRNG, so a failing case can be replayed. */

function randomWord(rand: () => number): string {
  const len = 2 + Math.floor(rand() * 9)
  let s = ''
  for (let i = 0; i < len; i++) s += String.fromCharCode(97 + Math.floor(rand() * 26))
  return s
}

describe('hashKey', () => {
  test('is pinned: these values must not change, or running clusters would disagree on partitions', () => {
    expect([
      hashKey(''), hashKey('a'), hashKey('hello'), hashKey('héllo 🌍'),
      hashKey(0), hashKey(1), hashKey(-1), hashKey(2 ** 40), hashKey(1.5), hashKey(NaN),
      hashKey(null), hashKey(true), hashKey(false),
      hashKey(['a', 1]), hashKey([]), hashKey([['x'], [1, [2]]]), hashKey({ b: 2, a: 'x' }),
    ]).toEqual(PINNED)
  })

  test('equal keys hash equally, whatever object built them', () => {
    const build = (i: number): unknown[] => ['w' + String(i), i, [i * 0.5, 'x'.repeat(i % 5)], null, i % 2 === 0]
    for (let i = 0; i < 200; i++) {
      expect(hashKey(build(i))).toBe(hashKey(build(i)))
      expect(hashKey(JSON.parse(JSON.stringify(build(i))))).toBe(hashKey(build(i)))
    }
    const s = 'ab' + 'cd'          // a rope/concatenation must hash like a literal
    expect(hashKey(s)).toBe(hashKey('abcd'))
    expect(hashKey({ a: 1, b: [2] })).toBe(hashKey({ b: [2], a: 1 }))
  })

  test('-0 hashes like 0, NaN to one fixed value', () => {
    expect(hashKey(-0)).toBe(hashKey(0))
    expect(hashKey([-0, 'a'])).toBe(hashKey([0, 'a']))
    expect(hashKey(NaN)).toBe(hashKey(0 / 0))
  })

  test('distinguishes types and structure', () => {
    expect(hashKey(1)).not.toBe(hashKey('1'))
    expect(hashKey('ab')).not.toBe(hashKey(['ab']))
    expect(hashKey([1])).not.toBe(hashKey([[1]]))
    expect(hashKey([1, 2])).not.toBe(hashKey([2, 1]))
    expect(hashKey('[1]')).not.toBe(hashKey([1]))
    expect(hashKey(null)).not.toBe(hashKey(false))
    expect(hashKey(1.5)).not.toBe(hashKey(1))
  })

  test('is a 32-bit unsigned integer', () => {
    const rand = prng(7)
    for (let i = 0; i < 1000; i++) {
      for (const k of [randomWord(rand), (rand() - 0.5) * 1e12, Math.floor(rand() * 2 ** 31) | 0, [randomWord(rand), i]]) {
        const h = hashKey(k)
        expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true)
      }
    }
  })

  test('rejects values that are not JSON-like, naming the problem', () => {
    expect(() => hashKey(() => 1)).toThrow(/JSON-like.*function/)
    expect(() => hashKey(Symbol('s'))).toThrow(/symbol/)
  })
})

describe('partitionOf', () => {
  test('100k distinct words spread over 16 partitions within ±10% of the mean', () => {
    const rand = prng(42)
    const words = new Set<string>()
    while (words.size < 100_000) words.add(randomWord(rand))
    const counts = new Array<number>(16).fill(0)
    for (const w of words) {
      const p = partitionOf(w, 16)
      counts[p] = (counts[p] ?? 0) + 1
    }
    const mean = 100_000 / 16
    for (const c of counts) {
      expect(c).toBeGreaterThan(mean * 0.9)
      expect(c).toBeLessThan(mean * 1.1)
    }
  })

  test('sequential integers and composite keys spread too', () => {
    for (const make of [(i: number): unknown => i, (i: number): unknown => ['k', i]]) {
      const counts = new Array<number>(16).fill(0)
      for (let i = 0; i < 100_000; i++) {
        const p = partitionOf(make(i), 16)
        counts[p] = (counts[p] ?? 0) + 1
      }
      for (const c of counts) expect(Math.abs(c - 6250)).toBeLessThan(625)
    }
  })

  test('is within range', () => {
    for (let n = 1; n < 50; n++) {
      const p = partitionOf('key' + String(n), n)
      expect(p >= 0 && p < n).toBe(true)
    }
  })
})

describe('KeyMap', () => {
  test('the number 1 and the string "1" are different keys', () => {
    const m = new KeyMap<string>()
    m.set(1, 'number')
    m.set('1', 'string')
    expect(m.size).toBe(2)
    expect(m.get(1)).toBe('number')
    expect(m.get('1')).toBe('string')
  })

  test('the string "[1]" and the array [1] are different keys', () => {
    const m = new KeyMap<string>()
    m.set('[1]', 'string')
    m.set([1], 'array')
    expect(m.size).toBe(2)
    expect(m.get('[1]')).toBe('string')
    expect(m.get([1])).toBe('array')
    expect(m.get(['1'])).toBeUndefined()
  })

  test('arrays are equal by value, nested too', () => {
    const m = new KeyMap<number>()
    m.set(['a', 1], 1)
    m.set(['a', 1], 2)             // a fresh but equal array replaces the value
    m.set(['a', [1, ['b']]], 3)
    expect(m.size).toBe(2)
    expect(m.get(['a', 1])).toBe(2)
    expect(m.get(['a', [1, ['b']]])).toBe(3)
    expect(m.has(['a', [1, 'b']])).toBe(false)
    expect(m.has(['a', [[1], ['b']]])).toBe(false)
    expect(m.has([['a', 1]])).toBe(false)
  })

  test('-0 and 0 are one key, alone and inside arrays; NaN finds NaN', () => {
    const m = new KeyMap<string>()
    m.set(0, 'zero')
    expect(m.get(-0)).toBe('zero')
    m.set([-0], 'array')
    expect(m.get([0])).toBe('array')
    m.set(NaN, 'nan')
    expect(m.get(0 / 0)).toBe('nan')
    expect(m.size).toBe(3)
  })

  test('null, booleans, undefined and values that JSON would merge stay distinct', () => {
    const m = new KeyMap<number>()
    const keys: unknown[] = [null, false, true, undefined, 'null', [null], [NaN], [Infinity], [undefined], ['NaN'], [-Infinity]]
    keys.forEach((k, i) => m.set(k, i))
    expect(m.size).toBe(keys.length)
    keys.forEach((k, i) => expect(m.get(k)).toBe(i))
  })

  test('objects are equal whatever their property order', () => {
    const m = new KeyMap<number>()
    m.set({ a: 1, b: [2] }, 1)
    expect(m.get({ b: [2], a: 1 })).toBe(1)
    expect(m.has({ a: 1 })).toBe(false)
    expect(m.has({ a: '1', b: [2] })).toBe(false)
  })

  test('entries() yields the original key values; delete and clear work on both kinds', () => {
    const m = new KeyMap<number>()
    const arr = ['x', [1]]
    m.set('s', 1)
    m.set(arr, 2)
    m.set(['x', [1]], 3)
    expect([...m.entries()]).toEqual([['s', 1], [['x', [1]], 3]])
    expect([...m.entries()][1]?.[0]).toBe(arr)   // the first key seen is kept
    expect([...m.values()]).toEqual([1, 3])
    expect([...m]).toEqual([...m.entries()])
    expect(m.delete(['x', [1]])).toBe(true)
    expect(m.delete(['x', [1]])).toBe(false)
    expect(m.delete('s')).toBe(true)
    expect(m.size).toBe(0)
    m.set(1, 1)
    m.set([1], 1)
    m.clear()
    expect(m.size).toBe(0)
    expect(m.has(1) || m.has([1])).toBe(false)
  })

  test('string keys that name object properties or look like indices are keys like any other', () => {
    const m = new KeyMap<number | undefined>()
    const keys = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', '', '7', '4294967295', '-0', 'NaN', '1e3']
    keys.forEach((k, i) => m.set(k, i))
    m.set(7, 100)
    m.set('undefined', undefined)      // a value of undefined still counts as present
    expect(m.size).toBe(keys.length + 2)
    keys.forEach((k, i) => expect(m.get(k)).toBe(i))
    expect(m.get(7)).toBe(100)
    expect(m.has('undefined')).toBe(true)
    expect(m.has('valueOf')).toBe(false)
    expect(m.get('valueOf')).toBeUndefined()
    m.set('undefined', 5)
    expect(m.size).toBe(keys.length + 2)
    expect(new Map([...m.entries()].map(([k, v]) => [String(typeof k) + ':' + String(k), v])).size).toBe(keys.length + 2)
    expect(m.delete('__proto__')).toBe(true)
    expect(m.delete('__proto__')).toBe(false)
    expect(m.has('__proto__')).toBe(false)
    expect(m.size).toBe(keys.length + 1)
  })

  test('agrees with hashKey: equal keys in the map have equal hashes', () => {
    const rand = prng(3)
    const m = new KeyMap<number>()
    for (let i = 0; i < 2000; i++) {
      const k = [randomWord(rand).slice(0, 2), Math.floor(rand() * 5)]
      const prev = m.get(k)
      if (prev !== undefined) expect(hashKey(k)).toBe(prev)
      else m.set(k, hashKey(k))
    }
  })
})

describe('compareKeys', () => {
  const sorted = (xs: unknown[]): unknown[] => [...xs].sort(compareKeys)

  test('numbers numerically, before strings, strings by JS <', () => {
    expect(sorted([10, 9, 'b', 'a', 2])).toEqual([2, 9, 10, 'a', 'b'])
    expect(sorted(['b', 'B', 'a', '10', '9', 'ä'])).toEqual(['10', '9', 'B', 'a', 'b', 'ä'])
    expect(sorted([1.5, -3, 1e21, -Infinity, Infinity, 0])).toEqual([-Infinity, -3, 0, 1.5, 1e21, Infinity])
  })

  test('arrays element by element, a shorter prefix first, after strings', () => {
    expect(sorted([['b'], ['a', 2], ['a', 10], ['a'], [], 'z', 5, ['a', 'x'], [1, 'z']]))
      .toEqual([5, 'z', [], [1, 'z'], ['a'], ['a', 2], ['a', 10], ['a', 'x'], ['b']])
    expect(compareKeys([[1, 2]], [[1, 3]])).toBe(-1)
    expect(compareKeys([[1, 2], 'a'], [[1, 2], 'a'])).toBe(0)
  })

  test('null first, then booleans, then numbers, strings, arrays', () => {
    expect(sorted([[0], 'a', 1, true, false, null])).toEqual([null, false, true, 1, 'a', [0]])
  })

  test('-0 equals 0; NaN equals NaN and sorts after every other number', () => {
    expect(compareKeys(-0, 0)).toBe(0)
    expect(compareKeys([-0], [0])).toBe(0)
    expect(compareKeys(NaN, NaN)).toBe(0)
    expect(sorted([NaN, Infinity, 'a', -1])).toEqual([-1, Infinity, NaN, 'a'])
  })

  test('returns only -1, 0, 1 and is antisymmetric and consistent with equality', () => {
    const rand = prng(11)
    const pick = (): unknown => {
      const r = rand()
      if (r < 0.3) return Math.floor(rand() * 5)
      if (r < 0.6) return randomWord(rand).slice(0, 1)
      if (r < 0.7) return null
      if (r < 0.8) return rand() < 0.5
      return [Math.floor(rand() * 3), rand() < 0.5 ? 'a' : [1]]
    }
    for (let i = 0; i < 5000; i++) {
      const a = pick()
      const b = pick()
      const c = compareKeys(a, b)
      expect([-1, 0, 1]).toContain(c)
      expect(compareKeys(b, a)).toBe(-c || 0)
      const m = new KeyMap<true>()
      m.set(a, true)
      expect(m.has(b)).toBe(c === 0)
    }
  })
})

// Computed once from the implementation; update only on purpose (it changes every partition).
const PINNED: number[] = [
  2872998923, 711464985, 3214601309, 427825794,
  2349025055, 2096739716, 2388306958, 3980370269, 958664140, 2146959360,
  1853189228, 1953658213, 1717660787,
  2208755446, 2130029671, 1594357527, 2876981748,
]
