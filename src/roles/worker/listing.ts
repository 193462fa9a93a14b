// Answers the master's planning questions about files, since the master never opens data files:
// which files an input path names (with sizes), and whether an output path is free; and does the
// file work on outputs: clearing, dropping, finalizing.
// Every decision is on real paths: a link (at any component, dangling or not) that leads out of
// the data dir, onto the data dir itself, or into a reserved path (this worker's work dir, the
// master's state db) is refused, and checked again right before each delete or write.
import { lstatSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative, sep } from 'node:path'
import { ApiError, type ErrorCode } from '../../api/error-codes'
import type { ListAnswer, ListRequest } from '../../api/tasks'

const GLOB_CHARS = /[*?[{]/

/** A path no job may read, write or contain (absolute), and what it is, for the message. */
export type Reserved = { path: string; what: string }

type ListError = ListAnswer['errors'][number]

export function answerListing(dataDir: string, req: ListRequest, own: readonly Reserved[] = []): ListAnswer {
  const root = realpathSync(dataDir)
  const reserved = realReserved([...own, ...(req.reserved ?? [])])
  const answer: ListAnswer = { inputs: [], errors: [] }
  const inputFiles: { node_id: string; real: string }[] = []
  for (const input of req.inputs) {
    try {
      const files = listInput(root, input.path)
      if (files.length === 0 && input.allow_empty !== true) {
        throw coded('INPUT_NOT_FOUND', `input "${input.path}" matches no file under the data dir ${root} (--data-dir): check the path and --data-dir, or set "allow_empty": true on the node to read it as empty`)
      }
      for (const f of files) {
        const r = reserved.find(r => f.real === r.real || inside(r.real, f.real))
        if (r !== undefined) throw coded('RESERVED_PATH', `input file "${f.path}" lies in ${r.what}, which jobs may not read`)
        inputFiles.push({ node_id: input.node_id, real: f.real })
      }
      answer.inputs.push({ node_id: input.node_id, files: files.map(f => ({ path: f.path, size: f.size, mtime_ms: f.mtimeMs })) })
    } catch (e) {
      const err = e as Error & { code?: string }
      answer.errors.push({ node_id: input.node_id, code: err.code ?? 'INPUT_NOT_FOUND', message: `node "${input.node_id}": ${err.message}` })
    }
  }
  const outputs: { node_id: string; path: string; real: string }[] = []
  for (const out of req.outputs) {
    const problem = outputProblem(root, out.path, reserved)
    if (problem !== null) {
      answer.errors.push({ node_id: out.node_id, code: problem.code, message: `node "${out.node_id}": output path "${out.path}" ${problem.message}` })
      continue
    }
    const real = realOf(join(root, out.path))!
    if (lstatSync(join(root, out.path), { throwIfNoEntry: false }) !== undefined && !out.overwrite) {
      answer.errors.push({ node_id: out.node_id, code: 'OUTPUT_EXISTS', message: `node "${out.node_id}": output path "${out.path}" exists: remove it or set "overwrite": true on the node` })
    }
    outputs.push({ node_id: out.node_id, path: out.path, real })
  }
  answer.errors.push(...collisions(outputs, inputFiles))
  return answer
}

/** Outputs that differ as written may still meet through links: compared again on real paths. */
function collisions(outputs: readonly { node_id: string; path: string; real: string }[], inputs: readonly { node_id: string; real: string }[]): ListError[] {
  const errors: ListError[] = []
  for (let i = 0; i < outputs.length; i++) {
    const a = outputs[i]!
    for (const b of outputs.slice(i + 1)) {
      if (a.real === b.real || inside(a.real, b.real) || inside(b.real, a.real)) {
        errors.push({ node_id: a.node_id, code: 'OUTPUT_CONFLICT', message: `nodes "${a.node_id}" and "${b.node_id}" write "${a.path}" and "${b.path}", which are the same folder or one inside the other on this worker's disk (through a link): give each sink a folder of its own` })
      }
    }
    const read = inputs.find(f => f.real === a.real || inside(a.real, f.real))
    if (read !== undefined) {
      errors.push({ node_id: a.node_id, code: 'OUTPUT_CONFLICT', message: `node "${a.node_id}" writes "${a.path}", which holds files that node "${read.node_id}" reads (through a link on this worker's disk): write outside the job's inputs` })
    }
  }
  return errors
}

/** Why an output path may not be written or cleared, or null if it may. */
function outputProblem(root: string, path: string, reserved: readonly RealReserved[]): { code: string; message: string } | null {
  const real = realOf(join(root, path))
  if (real === null || !inside(root, real)) return { code: 'PATH_OUTSIDE_DATA_DIR', message: 'leaves the data dir (through a link): give a folder inside --data-dir' }
  if (real === root) return { code: 'OUTPUT_CONFLICT', message: 'is the data dir itself (through a link): give it a folder of its own' }
  const r = reserved.find(r => real === r.real || inside(r.real, real) || inside(real, r.real))
  if (r !== undefined) return { code: 'RESERVED_PATH', message: `${real === r.real || inside(r.real, real) ? 'lies in' : 'contains'} ${r.what}, which jobs may not write` }
  return null
}

/** The lexical path to delete or write under, if its real path is a folder a job may touch. */
function touchable(root: string, path: string, reserved: readonly RealReserved[]): string | null {
  return outputProblem(root, path, reserved) === null ? join(root, path) : null
}

/** Removes outputs that the job may overwrite; done once, when the job starts. With
 *  `olderThanMs`, only the files of each output folder last written longer ago than that: a
 *  worker back from an absence removes the old parts of an output overwritten meanwhile, and keeps
 *  the parts of the job that overwrote it, should its data dir be shared with the writers.
 *  A path that may not be touched is skipped (the listing refused it at submit); returns those. */
export function clearOutputs(dataDir: string, paths: readonly string[], olderThanMs?: number, own: readonly Reserved[] = []): string[] {
  const root = realpathSync(dataDir)
  const reserved = realReserved(own)
  const skipped: string[] = []
  for (const p of paths) {
    const full = touchable(root, p, reserved)
    if (full === null) { skipped.push(p); continue }
    if (olderThanMs === undefined) { rmSync(full, { recursive: true, force: true }); continue }
    const st = lstatSync(full, { throwIfNoEntry: false })
    if (st === undefined || !st.isDirectory()) continue
    const cutoff = Date.now() - olderThanMs
    for (const name of readdirSync(full)) {
      const file = join(full, name)
      // A file another worker removes meanwhile (a shared data dir) is not an error. lstat: a
      // link is judged (and removed) as itself, never through its target.
      const f = lstatSync(file, { throwIfNoEntry: false })
      if (f !== undefined && (f.isFile() || f.isSymbolicLink()) && f.mtimeMs < cutoff && touchable(root, p, reserved) !== null) rmSync(file, { force: true })
    }
  }
  return skipped
}

/** After a job: its attempts' temporary folders go; a failed or cancelled job's outputs go whole,
 *  so that it leaves no partial output behind. Paths that may not be touched are skipped. */
export function dropOutputs(dataDir: string, paths: readonly string[], keep: boolean, own: readonly Reserved[] = []): string[] {
  const root = realpathSync(dataDir)
  const reserved = realReserved(own)
  const skipped: string[] = []
  for (const p of paths) {
    const target = keep ? join(p, '_temporary') : p
    const full = touchable(root, p, reserved) === null ? null : touchable(root, target, reserved)
    if (full === null) { skipped.push(p); continue }
    rmSync(full, { recursive: true, force: true })
  }
  return skipped
}

/** Throws (ApiError) unless an output folder may be written now: a task calls it right before it
 *  creates its temporary folder and right before it renames its part into place, so a link made
 *  after submit is not written through either. */
export function checkOutputFolder(dataDir: string, path: string, own: readonly Reserved[] = []): void {
  const problem = outputProblem(realpathSync(dataDir), path, realReserved(own))
  if (problem !== null) throw new ApiError(problem.code as ErrorCode, `output path "${path}" ${problem.message}`, { path })
}

/** Marks each output complete: its temporary folder goes, then `_SUCCESS` is written (last, so
 *  that readers that wait for it see every part). Refuses (ApiError) a folder that may not be
 *  touched, before touching anything. */
export function finalizeOutputs(dataDir: string, paths: readonly string[], own: readonly Reserved[] = [], jobId = ''): void {
  const root = realpathSync(dataDir)
  const reserved = realReserved(own)
  for (const p of paths) {
    const problem = outputProblem(root, p, reserved)
    if (problem !== null) throw new ApiError(problem.code as ErrorCode, `output path "${p}" ${problem.message}: not finalized`, { path: p })
  }
  for (const p of paths) {
    const recheck = (): string => {
      const full = touchable(root, p, reserved)
      if (full === null) throw new ApiError('PATH_OUTSIDE_DATA_DIR', `output path "${p}" leaves the data dir (it changed while being finalized): not finalized`, { path: p })
      return full
    }
    mkdirSync(recheck(), { recursive: true })
    rmSync(join(recheck(), '_temporary'), { recursive: true, force: true })
    // A link named _SUCCESS goes as itself; the new file is created, never opened through a link.
    const success = join(recheck(), '_SUCCESS')
    rmSync(success, { force: true })
    // It names the job: a worker sharing this data dir sees that the job's swap is done.
    writeFileSync(success, jobId, { flag: 'wx' })
  }
}

type RealReserved = Reserved & { real: string }

/** Each reserved path by its real path (lexical, if a link on its way dangles). */
function realReserved(list: readonly Reserved[]): RealReserved[] {
  return list.map(r => ({ ...r, real: realOf(r.path) ?? r.path }))
}

type Listed = { path: string; size: number; mtimeMs: number; real: string }

function listInput(root: string, path: string): Listed[] {
  let names: string[]
  if (GLOB_CHARS.test(path)) {
    // Links are followed (a linked folder in the tree is read), so the same file can be reached
    // by several names, and a loop of links by endless ones: each file is read once, by its real
    // path, under its own name when the glob reaches it by that name.
    // Names that start with "_" are hidden as in a directory (an output's _SUCCESS, _temporary).
    names = [...new Bun.Glob(path).scanSync({ cwd: root, onlyFiles: true, dot: false, followSymlinks: true })]
      .filter(n => !n.split('/').some(c => c.startsWith('_')))
  } else {
    const full = join(root, path)
    const st = statQuiet(full)
    if (st === undefined) throw coded('INPUT_NOT_FOUND', `input path "${path}" does not exist under the data dir ${root} (--data-dir): check the path and --data-dir`)
    names = st.isDirectory()
      ? readdirSync(full).filter(n => !n.startsWith('.') && !n.startsWith('_')).map(n => join(path, n)).filter(p => statQuiet(join(root, p))?.isFile() === true)
      : [path]
  }
  const byReal = new Map<string, Listed>()
  for (const p of names.sort()) {
    const full = join(root, p)
    let real: string
    try { real = realpathSync(full) } catch { continue }   // gone meanwhile, or a dangling link
    // A link may point outside the data dir; the real path decides.
    if (!inside(root, real)) throw coded('PATH_OUTSIDE_DATA_DIR', `input file "${p}" is a link that leaves the data dir`)
    const rel = relative(root, full)
    const seen = byReal.get(real)
    if (seen === undefined || rel === relative(root, real)) {
      const st = statSync(full)
      byReal.set(real, { path: rel, size: st.size, mtimeMs: Math.floor(st.mtimeMs), real })
    }
  }
  return [...byReal.values()].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
}

function statQuiet(p: string): ReturnType<typeof statSync> | undefined {
  try { return statSync(p, { throwIfNoEntry: false }) } catch { return undefined }  // ELOOP: a link to itself
}

/** The real path of a path whose last components may not exist yet: that of its nearest existing
 *  ancestor (through every link on the way) with the rest appended. Null when a link on the way
 *  is dangling: it could be made to point anywhere before the path is used. */
function realOf(full: string): string | null {
  let p = full
  const tail: string[] = []
  while (lstatSync(p, { throwIfNoEntry: false }) === undefined) {
    const up = dirname(p)
    if (up === p) break
    tail.unshift(basename(p))
    p = up
  }
  try { return join(realpathSync(p), ...tail) } catch { return null }
}

const inside = (root: string, full: string): boolean => full === root || full.startsWith(root + sep)

function coded(code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}
