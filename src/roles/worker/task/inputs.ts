// A source task's input: the lines of its split of one file, decoded into records. The file must
// still be the one that was planned: a task that found it gone or resized would otherwise read an
// empty or different split and succeed with a wrong answer.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import type { NodeSpec } from '../../../api/jobs'
import type { SplitWire } from '../../../api/tasks'
import { LineCutter } from '../../../engine/lines'
import { csvHeader, InputLineError, sourceDecoder } from '../../../engine/operators/sources'
import type { Consumer } from '../../../engine/pipeline'
import { describeRecord, UdfError } from '../../../engine/records'
import { InputChanged } from './failures'
import { linesIn, takesRegions } from '../../../engine/builtins/operators'
import { CsvSelectReader, selectsColumns } from '../../../engine/builtins/csv'

export const READ_CHUNK_BYTES = 4 * 1024 * 1024

/** Fails with INPUT_CHANGED unless the split's file is there with the size planned for it. */
export function checkInput(node: NodeSpec, split: SplitWire, dataDir: string, workerId: string): void {
  const path = join(dataDir, split.path)
  let size: number
  try {
    const st = statSync(path)
    if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' })
    size = st.size
  } catch (e) {
    throw new InputChanged(node.id, `INPUT_CHANGED: input file "${split.path}" of node "${node.id}" is not on worker ${workerId} any more (${(e as { code?: string }).code ?? (e as Error).message}); it was there when the job was planned: keep a job's input files in place until it ends, and give every worker the same files`)
  }
  if (size !== split.file_size) throw sizeChanged(node, split, workerId, size)
}

const sizeChanged = (node: NodeSpec, split: SplitWire, workerId: string, size: number): InputChanged =>
  new InputChanged(node.id, `INPUT_CHANGED: input file "${split.path}" of node "${node.id}" is ${size} bytes on worker ${workerId}, but ${split.file_size} bytes when the job was planned: keep a job's input files unchanged until it ends, and give every worker the same files`)

/** Streams the split's records into the pipeline; returns how many there were. */
export async function readSourceSplit(node: NodeSpec, split: SplitWire, dataDir: string, workerId: string, spillAtBytes: number, root: Consumer): Promise<number> {
  checkInput(node, split, dataDir, workerId)
  const path = join(dataDir, split.path)
  let records = 0
  // Built-ins that read lines as bytes (words, grep) get them undecoded: no string per line.
  if (node.op === 'read_text' && node.with_path !== true && takesRegions(root)) {
    const onRegion = (region: Uint8Array): void => { records += linesIn(region); root.pushRegion(region) }
    const chunkBytes = Math.max(64 * 1024, Math.min(READ_CHUNK_BYTES, Math.floor(spillAtBytes / 32)))
    const short = await readRegions(path, split, onRegion, chunkBytes)
    if (short !== null) throw sizeChanged(node, split, workerId, short)
    return records
  }
  try {
    // read_csv with "columns"/"types": rows cut from the bytes, only the wanted fields made values.
    if (selectsColumns(node) && node.multiline !== true && (node.delimiter ?? ',').charCodeAt(0) < 0x80) {
      const header = split.start > 0 ? await readCsvHeader(node, path, split.file_size) : null
      const reader = new CsvSelectReader(node, { atFileStart: split.start === 0, header })
      const chunkBytes = Math.max(64 * 1024, Math.min(READ_CHUNK_BYTES, Math.floor(spillAtBytes / 32)))
      const short = await readRegions(path, split, region => {
        const recs = reader.decodeRegion(region)
        if (recs.length > 0) { records += recs.length; root.push(recs) }
      }, chunkBytes)
      if (short !== null) throw sizeChanged(node, split, workerId, short)
      return records
    }
    const header = node.op === 'read_csv' && node.header !== false && split.start > 0 ? await readCsvHeader(node, path, split.file_size) : null
    const decoder = sourceDecoder(node, { path: split.path, atFileStart: split.start === 0, header })
    const take = (recs: unknown[]): void => { if (recs.length > 0) { records += recs.length; root.push(recs) } }
    // The chunk read at once is a small slice of the budget: lines, their strings and the records
    // made from them live as long as the chunk is in the pipeline, and a flat_map multiplies them
    // (a 4 MiB chunk of words was 80 MiB of heap).
    const chunkBytes = Math.max(64 * 1024, Math.min(READ_CHUNK_BYTES, Math.floor(spillAtBytes / 32)))
    const short = await readLines(path, split, lines => take(decoder.decode(lines)), chunkBytes)
    // A file cut shorter while it was read ends before the planned size.
    if (short !== null) throw sizeChanged(node, split, workerId, short)
    take(decoder.finish())
  } catch (e) {
    if (e instanceof InputLineError) throw await badLine(node, path, split, e)
    throw e
  }
  return records
}

/** Reads the split's lines by the planned file size; returns the size found when the file ended
 *  early, else null. */
async function readLines(path: string, split: SplitWire, onLines: (lines: string[]) => void, chunkBytes = READ_CHUNK_BYTES): Promise<number | null> {
  const file = Bun.file(path)
  const cutter = new LineCutter(split)
  let pos = cutter.readFrom
  const size = split.file_size
  while (!cutter.done && pos < size) {
    const chunk = await file.slice(pos, Math.min(size, pos + chunkBytes)).bytes()
    if (chunk.length === 0) return pos
    pos += chunk.length
    const lines = cutter.push(chunk)
    if (lines.length > 0) onLines(lines)
  }
  if (!cutter.done) {
    const last = cutter.finish()
    if (last.length > 0) onLines(last)
  }
  return null
}

/** readLines without decoding: regions of whole lines (see LineCutter.pushBytes). */
async function readRegions(path: string, split: SplitWire, onRegion: (region: Uint8Array) => void, chunkBytes: number): Promise<number | null> {
  const file = Bun.file(path)
  const cutter = new LineCutter(split)
  let pos = cutter.readFrom
  const size = split.file_size
  while (!cutter.done && pos < size) {
    const chunk = await file.slice(pos, Math.min(size, pos + chunkBytes)).bytes()
    if (chunk.length === 0) return pos
    pos += chunk.length
    for (const region of cutter.pushBytes(chunk)) onRegion(region)
  }
  if (!cutter.done) {
    const last = cutter.finishBytes()
    if (last !== null) onRegion(last)
  }
  return null
}

/** A split that does not start its file still needs the file's header row: its first line that is
 *  not blank, as the split at the file's start sees it. */
async function readCsvHeader(node: NodeSpec, path: string, size: number): Promise<string[] | null> {
  const file = Bun.file(path)
  const cutter = new LineCutter({ start: 0, end: size })
  let first: string | undefined
  for (let pos = 0; first === undefined && !cutter.done && pos < size; pos += READ_CHUNK_BYTES) {
    first = cutter.push(await file.slice(pos, Math.min(size, pos + READ_CHUNK_BYTES)).bytes()).find(l => l !== '')
  }
  first ??= cutter.finish().find(l => l !== '')
  if (first === undefined) return null
  try {
    return csvHeader(node, first)
  } catch (e) {
    if (e instanceof InputLineError) throw new InputLineError(-1, e.message, e.line)
    throw e
  }
}

/**
 * A line of the input that does not parse fails the task with `file:line`, the line counted from the
 * start of the file. The lines before the split are only counted here, on the error path, so a
 * healthy split never reads bytes before its start. (lineInSplit -1 means the header line.)
 */
async function badLine(node: NodeSpec, path: string, split: SplitWire, e: InputLineError): Promise<UdfError> {
  let lineNo = 1
  if (e.lineInSplit >= 0) {
    // The split's first line starts after the first '\n' at offset >= start - 1 (see lines.ts),
    // so it is preceded by that newline and by every newline in [0, start - 1).
    const before = split.start > 0 ? await countNewlines(path, split.start - 1) + 1 : 0
    lineNo = before + e.lineInSplit + 1
  }
  return new UdfError(node.id, `${split.path}:${lineNo}: ${e.message}`, describeRecord(e.line))
}

async function countNewlines(path: string, end: number): Promise<number> {
  const file = Bun.file(path)
  let n = 0
  for (let pos = 0; pos < end; pos += READ_CHUNK_BYTES) {
    const chunk = await file.slice(pos, Math.min(end, pos + READ_CHUNK_BYTES)).bytes()
    for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) n++
  }
  return n
}
