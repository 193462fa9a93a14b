// Spill runs on the worker's disk: one file per run under the work dir's job folder, written and
// read synchronously (a spill happens inside a task thread's push, which does not await). The
// job's folder goes when the job ends, and the whole work dir at start-up.
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { RunFile, RunStore } from '../../../engine/spill/runs'
import { youngCollector } from './young-gc'

// A merge reads every run at once: a small chunk per run keeps it within the budget.
const READ_CHUNK_BYTES = 128 * 1024

/** A full disk is the machine's problem, not the function's: say so plainly. */
export class DiskFullError extends Error {}

export class FileRunStore implements RunStore {
  private n = 0
  /**
   * @param written told the size of every chunk written (young-gc.ts): a spill makes garbage as it
   *   writes, while all it spills is alive. A task passes its one counter to all its stores and its
   *   fetches: they make garbage in the same heap.
   */
  constructor(private readonly dir: string, private readonly prefix: string, private readonly written: (bytes: number) => void = youngCollector()) {}

  write(chunks: Iterable<Uint8Array>): RunFile {
    mkdirSync(this.dir, { recursive: true })
    const path = join(this.dir, `${this.prefix}-${this.n++}.run`)
    const fd = openSync(path, 'w')
    let size = 0
    try {
      for (const c of chunks) {
        let off = 0
        while (off < c.length) off += writeSync(fd, c, off, c.length - off)
        size += c.length
        this.written(c.length)
      }
    } catch (e) {
      closeSync(fd)
      rmSync(path, { force: true })
      if ((e as { code?: string }).code === 'ENOSPC') {
        throw new DiskFullError(`the work dir ${this.dir} is full while spilling ${size} bytes: free space there or give the worker another --work-dir`)
      }
      throw e
    }
    closeSync(fd)
    return { path, size }
  }

  *read(run: RunFile, start = 0, end = run.size): Iterable<Uint8Array> {
    const fd = openSync(run.path, 'r')
    try {
      let pos = start
      while (pos < end) {
        const buf = new Uint8Array(Math.min(READ_CHUNK_BYTES, end - pos))
        const n = readSync(fd, buf, 0, buf.length, pos)
        if (n === 0) throw new Error(`spill run ${run.path} ends at ${pos}, before ${end}`)
        pos += n
        yield n === buf.length ? buf : buf.subarray(0, n)
      }
    } finally {
      closeSync(fd)
    }
  }

  remove(run: RunFile): void { rmSync(run.path, { force: true }) }
}
