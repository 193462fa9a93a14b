// Input splits: cuts each input file into byte ranges, one map task per range.
// Pure planning only: it does not stat files (the caller passes sizes) and knows nothing of
// lines; where a range's lines begin and end is decided by LineCutter in lines.ts.

/** A file to read, with `path` relative to the data dir. */
export type InputFile = { path: string; size: number }

/** The byte range [start, end) of one file. `fileSize` lets the reader tell EOF from end. */
export type Split = { path: string; start: number; end: number; fileSize: number }

export const DEFAULT_SPLIT_BYTES = 64 * 1024 * 1024

/**
 * Cuts every non-empty file, in the given order, into consecutive ranges of `splitBytes`.
 * A remainder under 10% of `splitBytes` joins the previous range (so a range may reach
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
    for (let start = 0; start < file.size; ) {
      let end = Math.min(start + splitBytes, file.size)
      const rest = file.size - end
      // Integer test for rest < 10% of splitBytes, free of float rounding.
      if (rest > 0 && rest * 10 < splitBytes) end = file.size
      splits.push({ path: file.path, start, end, fileSize: file.size })
      start = end
    }
  }
  return splits
}
