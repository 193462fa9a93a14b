// Where a job's input files are: the listings of every disk merged into one, each file with the
// disks that hold it. Pure; the master asks one live worker per disk (core.ts) and plans from this.
//
// A file (by its path relative to the data dir) may be on one disk (data born on that machine),
// on several (copies: same size), or on a disk every worker shares (a shared volume). The same path
// with different sizes on two disks is refused: which one the job should read is the user's call.
// The part files of an output the master tracks (catalog.ts) are read where their committed
// copies are: a copy on another disk is a stray, and a part whose disks are all away is planned
// anyway, so that its task waits for one to return instead of the job reading less.
import type { WorkerId } from '../../api/ids'
import type { ListAnswer } from '../../api/tasks'
import { ApiError, type ErrorCode } from '../../api/errors'

/** One disk's answer, and the live workers that mount it (the first answered). */
export type DiskListing = { disk: string; workers: readonly WorkerId[]; answer: ListAnswer }

/** `mtimes`: per disk that listed it, when the file was last modified there */
export type HeldFile = { path: string; size: number; disks: string[]; mtimes?: Record<string, number> }
export type HeldInputs = { node_id: string; files: HeldFile[] }[]

/** The tracked outputs' part files, as the catalog has them. */
export type TrackedParts = {
  /** the disks with a committed copy of `file`, or undefined if it is no tracked output's part */
  holders(file: string): readonly string[] | undefined
  /** the tracked part files an input path reads, with their sizes and disks */
  readBy(inputPath: string): readonly HeldFile[]
}

const NONE: TrackedParts = { holders: () => undefined, readBy: () => [] }

export function mergeListings(listings: readonly DiskListing[], inputs: readonly { node_id: string; path: string }[], tracked: TrackedParts = NONE): HeldInputs {
  const notFound = new Map<string, string>()
  for (const l of listings) {
    for (const e of l.answer.errors) {
      // A path that matches nothing on one disk may match on another: judged on the union below.
      if (e.code === 'INPUT_NOT_FOUND') { if (!notFound.has(e.node_id)) notFound.set(e.node_id, e.message); continue }
      throw new ApiError(e.code as ErrorCode, listings.length > 1 ? `${e.message} (on the disk of worker ${l.workers[0]})` : e.message, { node_id: e.node_id })
    }
  }
  const out: HeldInputs = []
  for (const input of inputs) {
    const files = new Map<string, { size: number; disks: string[]; workers: string[]; mtimes: Record<string, number> }>()
    let listed = false
    for (const l of listings) {
      const answer = l.answer.inputs.find(i => i.node_id === input.node_id)
      if (answer === undefined) continue
      listed = true
      for (const f of answer.files) {
        const held = files.get(f.path)
        if (held === undefined) { files.set(f.path, { size: f.size, disks: [l.disk], workers: [l.workers[0]!], mtimes: f.mtime_ms === undefined ? {} : { [l.disk]: f.mtime_ms } }); continue }
        if (held.size !== f.size) throw conflict(input.node_id, f.path, held, f.size, l.workers[0]!)
        if (!held.disks.includes(l.disk)) { held.disks.push(l.disk); held.workers.push(l.workers[0]!) }
        if (f.mtime_ms !== undefined) held.mtimes[l.disk] = f.mtime_ms
      }
    }
    const held: HeldFile[] = []
    for (const [path, f] of files) {
      const committed = tracked.holders(path)
      const disks = committed === undefined ? f.disks : f.disks.filter(d => committed.includes(d))
      if (disks.length > 0) held.push({ path, size: f.size, disks: disks.sort(), ...(Object.keys(f.mtimes).length > 0 ? { mtimes: f.mtimes } : {}) })
    }
    for (const part of tracked.readBy(input.path)) {
      if (!held.some(h => h.path === part.path)) { held.push({ ...part, disks: [...part.disks].sort() }); listed = true }
    }
    if (!listed) {
      const message = notFound.get(input.node_id) ?? `node "${input.node_id}": input "${input.path}" was listed by no worker`
      throw new ApiError('INPUT_NOT_FOUND', listings.length > 1 ? `${message} (on none of the ${listings.length} disks of the live workers)` : message, { node_id: input.node_id })
    }
    // The order of a directory's files, whichever disk they are on.
    held.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
    out.push({ node_id: input.node_id, files: held })
  }
  return out
}

function conflict(node: string, path: string, held: { size: number; workers: string[] }, size: number, worker: string): ApiError {
  return new ApiError('INPUT_CONFLICT', `input file "${path}" differs between workers: ${held.size} bytes on ${held.workers.join(', ')}, ` +
    `${size} bytes on ${worker}. Workers with their own disks may hold different files, but one path must be the same file ` +
    'wherever it is: rename one of them, or make the copies equal', { node_id: node, file: path, workers: [...held.workers, worker] })
}
