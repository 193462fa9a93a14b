// Input splits: cuts each input file into byte ranges, one map task per range.
// Pure planning only: it does not stat files (the caller passes sizes) and knows nothing of
// lines; where a range's lines begin and end is decided by LineCutter in lines.ts.

/** A file to read, with `path` relative to the data dir. */
export type InputFile = { path: string; size: number }

/** The byte range [start, end) of one file. `fileSize` lets the reader tell EOF from end. */
export type Split = { path: string; start: number; end: number; fileSize: number }

export const DEFAULT_SPLIT_BYTES = 64 * 1024 * 1024

/**
 * Cuts every non-empty file, in the given order, into ranges of about equal size, as many as
 * `splitBytes`-sized ranges would need: a file of 100 MiB at 64 MiB gives two ranges of 50 MiB,
 * not 64 + 36, whose tasks would finish far apart and leave a core idle at the end of the stage.
 * A remainder under 10% of `splitBytes` earns no range of its own (so a range may reach
 * 1.1 × splitBytes): a task that reads a few bytes costs a whole scheduling round-trip.
 * An empty file yields no split: it has no lines, so a task for it would only be overhead.
 */
export function planSplits(files: readonly InputFile[], splitBytes = DEFAULT_SPLIT_BYTES): Split[] {
  // Offsets must be whole bytes; a fraction would put a boundary inside a byte.
  if (!Number.isSafeInteger(splitBytes) || splitBytes < 1) {
    throw new RangeError(`splitBytes must be a positive integer number of bytes, got ${splitBytes}`)
  }
  const splits: Split[] = []
  for (const file of files) {
    if (!Number.isSafeInteger(file.size) || file.size < 0) {
      throw new RangeError(`file ${file.path}: size must be a non-negative integer, got ${file.size}`)
    }
    const n = rangeCount(file.size, splitBytes)
    // The first `extra` ranges take one byte more: sizes differ by at most a byte.
    const base = Math.floor(file.size / n)
    const extra = file.size % n
    let start = 0
    for (let i = 0; i < n; i++) {
      const end = start + base + (i < extra ? 1 : 0)
      splits.push({ path: file.path, start, end, fileSize: file.size })
      start = end
    }
  }
  return splits
}

/** How many splits planSplits would cut, without cutting them: a job is refused before a million
 *  splits are built in memory. */
export function countSplits(files: readonly InputFile[], splitBytes = DEFAULT_SPLIT_BYTES): number {
  let n = 0
  for (const f of files) n += rangeCount(f.size, splitBytes)
  return n
}

/** A job's input splits, all sources together: each is a task, an attempt row and a map output in
 *  every reduce task's spec, so the master and the specs it sends stay bounded. */
export const MAX_SPLITS_PER_JOB = 100_000

/** How many ranges a file of `size` bytes gets: ceil(size / splitBytes), less one when the last
 *  would hold under 10% of splitBytes (integer test, free of float rounding). */
function rangeCount(size: number, splitBytes: number): number {
  if (size === 0) return 0
  const whole = Math.floor(size / splitBytes)
  const rest = size - whole * splitBytes
  if (rest === 0) return whole
  return whole > 0 && rest * 10 < splitBytes ? whole : whole + 1
}
