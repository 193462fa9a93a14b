// Answers the master's planning questions about files, since the master never opens data files:
// which files an input path names (with sizes), and whether an output path is free.
import { existsSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import type { ListAnswer, ListRequest } from '../../api/tasks'

const GLOB_CHARS = /[*?[{]/

export function answerListing(dataDir: string, req: ListRequest): ListAnswer {
  const root = realpathSync(dataDir)
  const answer: ListAnswer = { inputs: [], errors: [] }
  for (const input of req.inputs) {
    try {
      answer.inputs.push({ node_id: input.node_id, files: listInput(root, input.path) })
    } catch (e) {
      const err = e as Error & { code?: string }
      answer.errors.push({ node_id: input.node_id, code: err.code ?? 'INPUT_NOT_FOUND', message: `node "${input.node_id}": ${err.message}` })
    }
  }
  for (const out of req.outputs) {
    const full = join(root, out.path)
    if (!inside(root, full) || !inside(root, realpathOfNearest(full))) {
      answer.errors.push({ node_id: out.node_id, code: 'PATH_OUTSIDE_DATA_DIR', message: `node "${out.node_id}": output path "${out.path}" leaves the data dir` })
    } else if (existsSync(full) && !out.overwrite) {
      answer.errors.push({ node_id: out.node_id, code: 'OUTPUT_EXISTS', message: `node "${out.node_id}": output path "${out.path}" exists: remove it or set "overwrite": true on the node` })
    }
  }
  return answer
}

/** Removes outputs that the job may overwrite; done once, when the job starts. With
 *  `olderThanMs`, only the files of each output folder last written longer ago than that: a
 *  worker back from an absence removes the old parts of an output overwritten meanwhile, and keeps
 *  the parts of the job that overwrote it, should its data dir be shared with the writers. */
export function clearOutputs(dataDir: string, paths: readonly string[], olderThanMs?: number): void {
  const root = realpathSync(dataDir)
  for (const p of paths) {
    const full = join(root, p)
    if (!inside(root, full) || full === root) continue
    if (olderThanMs === undefined) { rmSync(full, { recursive: true, force: true }); continue }
    if (!existsSync(full) || !statSync(full).isDirectory()) continue
    const cutoff = Date.now() - olderThanMs
    for (const name of readdirSync(full)) {
      const file = join(full, name)
      // A file another worker removes meanwhile (a shared data dir) is not an error.
      const st = statSync(file, { throwIfNoEntry: false })
      if (st?.isFile() === true && st.mtimeMs < cutoff) rmSync(file, { force: true })
    }
  }
}

/** After a job: its attempts' temporary folders go; a failed or cancelled job's outputs go whole,
 *  so that it leaves no partial output behind. */
export function dropOutputs(dataDir: string, paths: readonly string[], keep: boolean): void {
  const root = realpathSync(dataDir)
  for (const p of paths) {
    const full = join(root, p)
    if (!inside(root, full) || full === root) continue
    rmSync(keep ? join(full, '_temporary') : full, { recursive: true, force: true })
  }
}

function listInput(root: string, path: string): { path: string; size: number }[] {
  let files: string[]
  if (GLOB_CHARS.test(path)) {
    files = [...new Bun.Glob(path).scanSync({ cwd: root, onlyFiles: true, dot: false, followSymlinks: true })].sort()
  } else {
    const full = join(root, path)
    if (!existsSync(full)) throw coded('INPUT_NOT_FOUND', `input path "${path}" does not exist under the data dir: check the path and --data-dir`)
    files = statSync(full).isDirectory()
      ? readdirSync(full).filter(n => !n.startsWith('.') && !n.startsWith('_')).sort().map(n => join(path, n))
          .filter(p => statSync(join(root, p)).isFile())
      : [path]
  }
  return files.map(p => {
    const full = join(root, p)
    // A symlink may point outside the data dir; the real path decides.
    if (!inside(root, realpathSync(full))) throw coded('PATH_OUTSIDE_DATA_DIR', `input file "${p}" is a link that leaves the data dir`)
    return { path: relative(root, full), size: statSync(full).size }
  })
}

/** The real path of a path that may not exist yet: that of its nearest existing ancestor, so a
 *  symlinked folder on the way out of the data dir is seen. */
function realpathOfNearest(full: string): string {
  let p = full
  while (!existsSync(p)) {
    const up = dirname(p)
    if (up === p) return p
    p = up
  }
  return realpathSync(p)
}

const inside = (root: string, full: string): boolean => full === root || full.startsWith(root + sep)

function coded(code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}
