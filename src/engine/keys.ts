// Keys by value: hashing, partitioning, a value-keyed Map and the total sort order of
// CONTRACT §4. Pure: no I/O, no clock, no randomness, so every process on every machine
// agrees on where a key goes and how keys sort. It does not encode records (see codec.ts).
//
// One notion of equality runs through this file, and hashKey/KeyMap/compareKeys must agree
// with it: two keys are equal when their values are equal. Numbers compare by value (-0 is 0,
// NaN equals NaN), `1` and `"1"` differ, arrays are equal element by element, plain objects
// are equal when they hold the same properties with equal values, in any order.

/** A key as the contract allows it; booleans and null are accepted too and treated by value. */
export type Key = string | number | boolean | null | readonly Key[]

// ---------------------------------------------------------------------------------------------
// Hashing

// Type tags mixed into composite hashes, so that ["ab"] and "ab", or [1] and [[1]], differ.
const TAG_ARRAY = 0x41c64e6d
const TAG_OBJECT = 0x5bd1e995
const HASH_UNDEFINED = 0x0badf00d
const HASH_NULL = 0x6e756c6c
const HASH_FALSE = 0x66616c73
const HASH_TRUE = 0x74727565
const HASH_NAN = 0x7ff80000

export const FNV_OFFSET = 0x811c9dc5
export const FNV_PRIME = 0x01000193

// One shared view to read a double's bits without allocating. The word order of the
// Uint32Array depends on the host's endianness, so pick the indices once: the hash must be
// the same on a big-endian machine as on a little-endian one.
const f64 = new Float64Array(1)
const u32 = new Uint32Array(f64.buffer)
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const LO = LITTLE_ENDIAN ? 0 : 1
const HI = LITTLE_ENDIAN ? 1 : 0

/** murmur3's finalizer: FNV's low bits are weak, and partitionOf uses exactly the low bits. */
export function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** FNV-1a over UTF-16 code units: a plain loop, no allocation, so it keeps up with per-word use. */
function hashString(s: string): number {
  let h = FNV_OFFSET
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, FNV_PRIME)
  }
  return fmix32(h ^ s.length)
}

function hashNumber(n: number): number {
  // `n | 0` maps -0 to 0, so -0 takes this path and hashes exactly like 0.
  if ((n | 0) === n) return fmix32(Math.imul(n, 0x9e3779b1) ^ 0x27d4eb2f)
  if (n !== n) return HASH_NAN
  f64[0] = n
  return fmix32(Math.imul(u32[LO] ?? 0, 0x9e3779b1) ^ fmix32((u32[HI] ?? 0) ^ 0x165667b1))
}

/** Combines element hashes in order; the multiply-rotate keeps [1, 2] and [2, 1] apart. */
function combine(h: number, x: number): number {
  h = Math.imul(h ^ x, 0xcc9e2d51)
  h = (h << 15) | (h >>> 17)
  return (Math.imul(h, 0x1b873593) + 0xe6546b64) | 0
}

function hashArray(a: readonly unknown[]): number {
  let h = TAG_ARRAY ^ a.length
  for (let i = 0; i < a.length; i++) h = combine(h, hashKey(a[i]))
  return fmix32(h)
}

function hashObject(o: object): number {
  // Sorted property names: property order must not change the hash, since it does not
  // change equality.
  const rec = o as Record<string, unknown>
  const names = Object.keys(rec).sort()
  let h = TAG_OBJECT ^ names.length
  for (const name of names) h = combine(combine(h, hashString(name)), hashKey(rec[name]))
  return fmix32(h)
}

/** 32-bit unsigned hash of a key by value; identical on every process and machine (no seeds, no object identity). */
export function hashKey(k: unknown): number {
  switch (typeof k) {
    case 'string': return hashString(k)
    case 'number': return hashNumber(k)
    case 'boolean': return k ? HASH_TRUE : HASH_FALSE
    case 'undefined': return HASH_UNDEFINED
    case 'object':
      if (k === null) return HASH_NULL
      return Array.isArray(k) ? hashArray(k) : hashObject(k)
    default: throw unsupported(k)
  }
}

/** which of n partitions a key goes to: hashKey(k) % n */
export function partitionOf(k: unknown, n: number): number {
  return hashKey(k) % n
}

function unsupported(k: unknown): TypeError {
  return new TypeError(`a key must be a JSON-like value (string, number, boolean, null, array, ` +
    `object), got a ${typeof k}: return a string or number from the key function instead`)
}

// ---------------------------------------------------------------------------------------------
// Canonical strings for composite keys

/**
 * An injective text form of a composite key, used as a Map key. JSON.stringify is not enough:
 * it writes NaN, Infinity and undefined as `null`, which would merge distinct keys.
 * Strings are quoted, so the number 1 ("1") and the string "1" ("\"1\"") stay apart.
 */
function canonical(k: unknown): string {
  switch (typeof k) {
    case 'string': return JSON.stringify(k)
    case 'number': return k === 0 ? '0' : String(k)   // `k === 0` catches -0
    case 'boolean': return k ? 'true' : 'false'
    case 'undefined': return 'undefined'
    case 'object': {
      if (k === null) return 'null'
      if (Array.isArray(k)) {
        let s = '['
        for (let i = 0; i < k.length; i++) s += (i === 0 ? '' : ',') + canonical(k[i])
        return s + ']'
      }
      const rec = k as Record<string, unknown>
      const names = Object.keys(rec).sort()
      let s = '{'
      for (let i = 0; i < names.length; i++) {
        const name = names[i] as string
        s += (i === 0 ? '' : ',') + JSON.stringify(name) + ':' + canonical(rec[name])
      }
      return s + '}'
    }
    default: throw unsupported(k)
  }
}

// ---------------------------------------------------------------------------------------------
// KeyMap

/**
 * A Map keyed by value. Strings go in a dictionary object, other primitives in a native Map,
 * arrays (and other objects) under a canonical string in a second Map, so "[1]" the string and
 * [1] the array stay distinct.
 *
 * Why a dictionary for strings: JSC looks a string up among an object's properties about a third
 * faster than in a Map (1.6-1.9 s against 2.5-2.8 s CPU for the 5 M words of 32 MB of W1 text,
 * counted both ways in one process), and string keys are the common case. The object has no
 * prototype, so no key ("__proto__", "constructor") means anything special. The native Map
 * compares the other primitives by SameValueZero (-0 is 0, NaN is NaN), which is our equality.
 * Iteration order is not insertion order (a dictionary yields integer-like names first); callers
 * must not depend on it.
 */
export class KeyMap<V> {
  private strings: Record<string, V> = Object.create(null) as Record<string, V>
  private stringCount = 0
  private readonly prims = new Map<unknown, V>()
  // The original key is kept beside the value, so entries() gives back arrays, not strings.
  private readonly composites = new Map<string, [unknown, V]>()

  get(k: unknown): V | undefined {
    if (typeof k === 'string') return this.strings[k]
    if (typeof k !== 'object' || k === null) return this.prims.get(k)
    return this.composites.get(canonical(k))?.[1]
  }

  set(k: unknown, v: V): void {
    if (typeof k === 'string') {
      const d = this.strings
      if (d[k] === undefined && !(k in d)) this.stringCount++
      d[k] = v
      return
    }
    if (typeof k !== 'object' || k === null) {
      this.prims.set(k, v)
      return
    }
    const c = canonical(k)
    const entry = this.composites.get(c)
    // Keep the first key value seen: an equal key is the same key.
    if (entry === undefined) this.composites.set(c, [k, v])
    else entry[1] = v
  }

  has(k: unknown): boolean {
    if (typeof k === 'string') return k in this.strings
    if (typeof k !== 'object' || k === null) return this.prims.has(k)
    return this.composites.has(canonical(k))
  }

  get size(): number {
    return this.stringCount + this.prims.size + this.composites.size
  }

  delete(k: unknown): boolean {
    if (typeof k === 'string') {
      if (!(k in this.strings)) return false
      delete this.strings[k]
      this.stringCount--
      return true
    }
    if (typeof k !== 'object' || k === null) return this.prims.delete(k)
    return this.composites.delete(canonical(k))
  }

  clear(): void {
    this.strings = Object.create(null) as Record<string, V>
    this.stringCount = 0
    this.prims.clear()
    this.composites.clear()
  }

  /** yields the original key values */
  *entries(): IterableIterator<[unknown, V]> {
    const d = this.strings
    for (const k in d) yield [k, d[k]!]
    yield* this.prims.entries()
    for (const entry of this.composites.values()) yield [entry[0], entry[1]]
  }

  *values(): IterableIterator<V> {
    const d = this.strings
    for (const k in d) yield d[k]!
    yield* this.prims.values()
    for (const entry of this.composites.values()) yield entry[1]
  }

  [Symbol.iterator](): IterableIterator<[unknown, V]> {
    return this.entries()
  }
}

// ---------------------------------------------------------------------------------------------
// Sort order

// Rank of each kind in the total order: null first, then booleans, numbers, strings, arrays.
// undefined and plain objects are not contract keys; they get the two ends so that the order
// stays total whatever a key function returns.
const RANK_UNDEFINED = 0
const RANK_NULL = 1
const RANK_BOOLEAN = 2
const RANK_NUMBER = 3
const RANK_STRING = 4
const RANK_ARRAY = 5
const RANK_OBJECT = 6

function rankOf(k: unknown): number {
  switch (typeof k) {
    case 'number': return RANK_NUMBER
    case 'string': return RANK_STRING
    case 'boolean': return RANK_BOOLEAN
    case 'undefined': return RANK_UNDEFINED
    case 'object':
      if (k === null) return RANK_NULL
      return Array.isArray(k) ? RANK_ARRAY : RANK_OBJECT
    default: throw unsupported(k)
  }
}

function compareNumbers(a: number, b: number): number {
  if (a < b) return -1
  if (a > b) return 1
  if (a === b) return 0        // also -0 against 0
  // At least one is NaN: NaN equals NaN and sorts after every other number.
  const aNaN = a !== a
  const bNaN = b !== b
  return aNaN === bNaN ? 0 : aNaN ? 1 : -1
}

function compareArrays(a: readonly unknown[], b: readonly unknown[]): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const c = compareKeys(a[i], b[i])
    if (c !== 0) return c
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0
}

/** Objects compare as their name-sorted [name, value] lists: total, and blind to property order. */
function compareObjects(a: object, b: object): number {
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  const na = Object.keys(ra).sort()
  const nb = Object.keys(rb).sort()
  const n = Math.min(na.length, nb.length)
  for (let i = 0; i < n; i++) {
    const ka = na[i] as string
    const kb = nb[i] as string
    if (ka !== kb) return ka < kb ? -1 : 1
    const c = compareKeys(ra[ka], rb[kb])
    if (c !== 0) return c
  }
  return na.length < nb.length ? -1 : na.length > nb.length ? 1 : 0
}

/** total order of CONTRACT section 4 sort: numbers (numerically) before strings (JS `<`), then arrays element by element (shorter prefix first); booleans/null: put null first, then booleans (false<true), then numbers, strings, arrays. Returns -1|0|1. */
export function compareKeys(a: unknown, b: unknown): number {
  // Fast paths for the two common homogeneous cases, before any rank lookup.
  if (typeof a === 'number' && typeof b === 'number') return compareNumbers(a, b)
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0
  const ra = rankOf(a)
  const rb = rankOf(b)
  if (ra !== rb) return ra < rb ? -1 : 1
  switch (ra) {
    case RANK_BOOLEAN: return a === b ? 0 : a ? 1 : -1
    case RANK_ARRAY: return compareArrays(a as readonly unknown[], b as readonly unknown[])
    case RANK_OBJECT: return compareObjects(a as object, b as object)
    default: return 0          // undefined and null: one value each
  }
}
