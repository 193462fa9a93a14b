import { describe, expect, test } from 'bun:test'
import { prng } from '../support/prng'
import { ByteSink, decodeFrames, encodeFrame, FrameDecoder } from '../../src/engine/codec'

/** mulberry32: a seeded PRNG, so a failing case can be replayed. */

const CHARS = ['a', 'z', ' ', '"', '\\', '\n', 'é', '中', '🌍', '\u0000', '1', '[']

function randomString(rand: () => number): string {
  // Long strings now and then: msgpackr decodes short and long strings along different paths.
  const len = rand() < 0.05 ? 100 + Math.floor(rand() * 300) : Math.floor(rand() * 12)
  let s = ''
  for (let i = 0; i < len; i++) s += CHARS[Math.floor(rand() * CHARS.length)] ?? 'a'
  return s
}

function randomNumber(rand: () => number): number {
  switch (Math.floor(rand() * 6)) {
    case 0: return Math.floor(rand() * 256) - 128
    case 1: return Math.floor(rand() * 2 ** 32) - 2 ** 31
    case 2: return Math.floor(rand() * 2 ** 53) * (rand() < 0.5 ? -1 : 1) || 1   // past 2^32, never -0
    case 3: return (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20)
    case 4: return [Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 32, 2 ** 32 + 1, 0.1, 1e308, 5e-324][Math.floor(rand() * 7)] ?? 0
    default: return Math.floor(rand() * 2 ** 32)   // uint32: encoded as msgpack uint32
  }
}

function randomValue(rand: () => number, depth: number): unknown {
  const r = rand()
  if (depth > 3 || r < 0.55) {
    const p = rand()
    if (p < 0.35) return randomString(rand)
    if (p < 0.8) return randomNumber(rand)
    if (p < 0.9) return null
    return rand() < 0.5
  }
  if (r < 0.8) {
    const n = Math.floor(rand() * 5)
    const a: unknown[] = []
    for (let i = 0; i < n; i++) a.push(randomValue(rand, depth + 1))
    return a
  }
  const o: Record<string, unknown> = {}
  const n = Math.floor(rand() * 4)
  for (let i = 0; i < n; i++) o[randomString(rand)] = randomValue(rand, depth + 1)
  return o
}

function randomBatch(rand: () => number, size: number): unknown[] {
  const batch: unknown[] = []
  for (let i = 0; i < size; i++) batch.push(rand() < 0.5 ? [randomValue(rand, 1), randomValue(rand, 1)] : randomValue(rand, 0))
  return batch
}

function concat(parts: Uint8Array[]): Uint8Array {
  const sink = new ByteSink(16)
  for (const p of parts) sink.append(p)
  return sink.bytes().slice()
}

describe('encodeFrame / decodeFrames', () => {
  test('random nested records roundtrip exactly, types kept', () => {
    const rand = prng(20240501)
    for (let i = 0; i < 300; i++) {
      const batch = randomBatch(rand, Math.floor(rand() * 40))
      expect(decodeFrames(encodeFrame(batch))).toEqual([batch])
    }
  })

  test('numbers stay numbers, strings stay strings, big integers and floats are exact', () => {
    const batch = [1, '1', [1, '1'], 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 60, 0.1, 1 / 3, -1.5e-300,
      Infinity, -Infinity, 4294967295, -2147483648, null, true, false, '', [], {}, { a: [null, { b: 'c' }] }]
    const [back] = decodeFrames(encodeFrame(batch))
    expect(back).toEqual(batch)
    for (let i = 0; i < batch.length; i++) {
      expect(typeof back?.[i]).toBe(typeof batch[i])
      if (typeof batch[i] === 'number') expect(Object.is(back?.[i], batch[i])).toBe(true)
    }
    const [[nan]] = decodeFrames(encodeFrame([NaN])) as [[unknown]]
    expect(Number.isNaN(nan)).toBe(true)
  })

  test('-0 comes back as 0, which is the same key', () => {
    expect(decodeFrames(encodeFrame([-0]))).toEqual([[0]])
  })

  test('the frame is a 4-byte little-endian length, then the msgpack array', () => {
    const f = encodeFrame(['a', 1])
    expect([...f]).toEqual([4, 0, 0, 0, 0x92, 0xa1, 0x61, 0x01])
    expect([...encodeFrame([])]).toEqual([1, 0, 0, 0, 0x90])
  })

  test('frames concatenate; an empty buffer holds no batches', () => {
    const batches = [[['a', 1]], [], [null, [2, 'b']]]
    expect(decodeFrames(concat(batches.map(encodeFrame)))).toEqual(batches)
    expect(decodeFrames(new Uint8Array(0))).toEqual([])
  })

  test('each frame is a standalone copy, not a view into a shared scratch buffer', () => {
    const a = encodeFrame(['first'])
    const b = encodeFrame(['second'])
    expect(a.byteOffset).toBe(0)
    expect(a.buffer.byteLength).toBe(a.length)
    expect(decodeFrames(a)).toEqual([['first']])
    expect(decodeFrames(b)).toEqual([['second']])
  })

  test('a truncated buffer throws, naming the bytes left over', () => {
    const buf = concat([encodeFrame(['a']), encodeFrame(['bb', 2])])
    expect(() => decodeFrames(buf.subarray(0, buf.length - 2))).toThrow(/truncated frame: \d+ byte/)
  })

  test('a frame that is not an array is rejected', () => {
    const notBatch = new Uint8Array([1, 0, 0, 0, 0x07])   // the number 7
    expect(() => decodeFrames(notBatch)).toThrow(/not a batch/)
    expect(() => decodeFrames(new Uint8Array([0, 0, 0, 0]))).toThrow(/empty frame/)
  })
})

describe('object records (the record extension)', () => {
  const rows = (n: number, from = 0) => Array.from({ length: n }, (_, i) =>
    [String(from + i), { order_id: String(from + i), customer_id: String(i % 7), amount: (i / 4).toFixed(2) }])

  test('a frame encoded after others decodes alone in a fresh process-like decoder, in any order', async () => {
    // Other frames first, with other and with the same shapes: nothing they teach the encoder
    // may be assumed by a later frame.
    const first = [encodeFrame(rows(50)), encodeFrame([{ x: 1 }, { y: 2, z: [{ x: 3 }] }]), encodeFrame(rows(20, 100))]
    const later = encodeFrame([{ y: 'y', z: null }, ...rows(30, 500), { x: 'last' }])
    const expected = [{ y: 'y', z: null }, ...rows(30, 500), { x: 'last' }]
    // A fresh decoder in another process: a subprocess that only imports msgpackr's Unpackr.
    const script = `import { Unpackr } from 'msgpackr'
      const b = new Uint8Array(await Bun.stdin.arrayBuffer())
      console.log(JSON.stringify(new Unpackr({ useRecords: true, mapsAsObjects: true }).unpack(b.subarray(4))))`
    const proc = Bun.spawn([process.execPath, '-e', script], { stdin: later, stdout: 'pipe', cwd: import.meta.dir })
    expect(JSON.parse(await new Response(proc.stdout).text())).toEqual(expected)
    expect(await proc.exited).toBe(0)
    // ...and in this process, the later frame before the earlier ones, and each one alone.
    expect(decodeFrames(concat([later, ...first]))[0]).toEqual(expected)
    for (const f of [...first].reverse()) expect(decodeFrames(f)).toHaveLength(1)
    expect(decodeFrames(first[1]!)).toEqual([[{ x: 1 }, { y: 2, z: [{ x: 3 }] }]])
  })

  test('many shapes in one frame, empty objects, and keys that look special', () => {
    const batch: unknown[] = []
    for (let i = 0; i < 300; i++) batch.push({ [`k${i}`]: i, [`j${i % 5}`]: [i] })
    batch.push({}, { constructor: 1, toString: 'x', hasOwnProperty: null, '': 2, '0': 3, '1e3': 4 })
    const [back] = decodeFrames(encodeFrame(batch)) as [unknown[]]
    expect(back).toEqual(batch)
    // msgpackr renames an own "__proto__" key (as it did for maps): decoding never sets a prototype.
    const [[hostile]] = decodeFrames(encodeFrame([JSON.parse('{"__proto__": {"polluted": true}, "a": 1}')])) as [[object]]
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(hostile).toEqual({ __proto_: { polluted: true }, a: 1 })
  })

  test('objects of one shape cost far less than repeated maps', () => {
    const batch = rows(1000)
    const perRecord = encodeFrame(batch).length / batch.length
    expect(perRecord).toBeLessThan(32)
    expect(decodeFrames(encodeFrame(batch))).toEqual([batch])
  })
})

describe('FrameDecoder', () => {
  const rand = prng(99)
  const batches = [randomBatch(rand, 5), [], randomBatch(rand, 12)]
  const stream = concat(batches.map(encodeFrame))

  test('the 3-frame stream is long enough to be interesting and short enough to cut everywhere', () => {
    expect(stream.length).toBeGreaterThan(200)
    expect(stream.length).toBeLessThan(3000)
  })

  test('a stream cut at every byte position decodes to the same batches', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder()
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))]
      d.finish()
      expect(got).toEqual(batches)
    }
  })

  test('a stream cut at every pair of positions decodes to the same batches', () => {
    // Every 13th by every 7th position: all pairs would be ~n²/2 decodes of the whole stream.
    for (let i = 0; i <= stream.length; i += 13) {
      for (let j = i; j <= stream.length; j += 7) {
        const d = new FrameDecoder()
        const got = [...d.push(stream.subarray(0, i)), ...d.push(stream.subarray(i, j)), ...d.push(stream.subarray(j))]
        d.finish()
        expect(got).toEqual(batches)
      }
    }
  })

  test('one byte at a time', () => {
    const d = new FrameDecoder()
    const got: unknown[][] = []
    for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)))
    d.finish()
    expect(got).toEqual(batches)
  })

  test('batches come out as soon as their last byte is in', () => {
    const first = encodeFrame(['x'])
    const d = new FrameDecoder()
    expect(d.push(first.subarray(0, first.length - 1))).toEqual([])
    expect(d.push(first.subarray(first.length - 1))).toEqual([['x']])
  })

  test('finish() on a partial frame throws, naming the byte count', () => {
    const d = new FrameDecoder()
    d.push(stream.subarray(0, stream.length - 3))
    const left = stream.length - 3 - (encodeFrame(batches[0] ?? []).length + encodeFrame([]).length)
    expect(() => d.finish()).toThrow(`truncated frame: ${left} byte(s) left`)
    const h = new FrameDecoder()
    h.push(new Uint8Array([9, 0]))                  // half a header
    expect(() => h.finish()).toThrow('truncated frame: 2 byte(s) left')
  })

  test('a large frame arriving in small chunks', () => {
    const big = Array.from({ length: 20_000 }, (_, i) => ['word' + String(i), i])
    const f = encodeFrame(big)
    const d = new FrameDecoder()
    const got: unknown[][] = []
    for (let i = 0; i < f.length; i += 1000) got.push(...d.push(f.subarray(i, i + 1000)))
    d.finish()
    expect(got).toEqual([big])
  })
  test('batches(): the same batches as push, cut anywhere, each decoded only when asked for', () => {
    for (let cut = 0; cut <= stream.length; cut += 5) {
      const d = new FrameDecoder()
      const got = [...d.batches(stream.subarray(0, cut)), ...d.batches(stream.subarray(cut))]
      d.finish()
      expect(got).toEqual(batches)
    }
    // A corrupt third frame (an empty payload) throws only when its batch is asked for: the first
    // two came out before, one at a time.
    const bad = concat([encodeFrame(['a']), encodeFrame(['b']), new Uint8Array([0, 0, 0, 0])])
    const it = new FrameDecoder().batches(bad)
    expect(it.next().value).toEqual(['a'])
    expect(it.next().value).toEqual(['b'])
    expect(() => it.next()).toThrow('empty frame')
  })
})

describe('ByteSink', () => {
  test('grows past its initial size, keeps bytes in order, resets to empty', () => {
    const s = new ByteSink(4)
    const rand = prng(5)
    const expected: number[] = []
    for (let i = 0; i < 100; i++) {
      const chunk = Uint8Array.from({ length: Math.floor(rand() * 50) }, () => Math.floor(rand() * 256))
      s.append(chunk)
      expected.push(...chunk)
    }
    expect(s.length).toBe(expected.length)
    expect([...s.bytes()]).toEqual(expected)
    s.reset()
    expect(s.length).toBe(0)
    expect(s.bytes().length).toBe(0)
    s.append(new Uint8Array([1, 2, 3]))
    expect([...s.bytes()]).toEqual([1, 2, 3])
  })

  test('starts from zero capacity', () => {
    const s = new ByteSink(0)
    s.append(new Uint8Array(0))
    s.append(new Uint8Array([7]))
    expect([...s.bytes()]).toEqual([7])
  })
})
