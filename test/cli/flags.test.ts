// The CLI's flag values: sizes, durations and the master's address, against values worked out by
// hand; every bad value is a UsageError (a one-line message and exit 2), never a crash.
import { describe, expect, test } from 'bun:test'
import { UsageError, parseDurationMs, parseMasterUrl, parseSizeBytes } from '../../src/cli/flags'

describe('sizes', () => {
  test('binary letters as Spark reads them, SI and IEC units, any case', () => {
    const cases: [string, number][] = [
      ['512m', 512 * 1048576], ['1g', 1073741824], ['1G', 1073741824], ['64k', 65536], ['2t', 2 * 1099511627776],
      ['512MiB', 512 * 1048576], ['1GiB', 1073741824], ['1.5GiB', 1610612736], ['512mib', 512 * 1048576],
      ['512MB', 512_000_000], ['1GB', 1_000_000_000], ['10KB', 10_000],
      ['4096', 4096], ['4096B', 4096], ['512 MiB', 512 * 1048576],
    ]
    for (const [text, bytes] of cases) expect({ text, bytes: parseSizeBytes('max-mem', text) }).toEqual({ text, bytes })
  })

  test('a bad size names the flag and the forms it takes', () => {
    for (const bad of ['1x', 'MiB', '', '-1g', '0m', '1.2.3g', '1 g b']) {
      let e: unknown
      try { parseSizeBytes('max-mem', bad) } catch (x) { e = x }
      expect(e).toBeInstanceOf(UsageError)
      expect((e as Error).message).toContain('--max-mem')
      expect((e as Error).message).not.toContain('\n')
    }
  })
})

test('durations', () => {
  expect(parseDurationMs('d', '500ms')).toBe(500)
  expect(parseDurationMs('d', '3s')).toBe(3000)
  expect(parseDurationMs('d', '2m')).toBe(120_000)
  expect(() => parseDurationMs('d', '3 weeks')).toThrow(UsageError)
})

test('the master as HOST:PORT or a URL', () => {
  expect(parseMasterUrl('master', '10.0.0.5:8080')).toBe('http://10.0.0.5:8080')
  expect(parseMasterUrl('master', 'localhost:8080')).toBe('http://localhost:8080')
  expect(parseMasterUrl('master', 'http://10.0.0.5:8080/')).toBe('http://10.0.0.5:8080')
  expect(parseMasterUrl('master', 'https://spark.example:443')).toBe('https://spark.example')
  expect(parseMasterUrl('master', '[::1]:8080')).toBe('http://[::1]:8080')
  for (const bad of ['http://h:1/jobs', 'ftp://h:1', 'h:notaport']) expect(() => parseMasterUrl('master', bad)).toThrow(UsageError)
})
