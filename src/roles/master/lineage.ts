// The lineage of a persisted dataset, pure: what a lost partition is recomputed from (DESIGN: "Data
// that lives on the workers"). Recorded when the persisting job succeeds, kept with the dataset in
// the catalog (and so in SQLite), and planned into a later job that reads the dataset when some of
// its partitions are gone: only the lost partitions' tasks of the stage that writes the dataset, and
// the stages those tasks need, in full (a reduce partition needs every map output).
//
// What is kept is what ran, not the DAG: the stage plans (trimmed to what leads to the dataset),
// each source stage's splits with the size each file had when planned, and a sort's range bounds.
// Re-planning the DAG could cut other partitions (the default partition count follows the cluster's
// slots, a sort samples afresh) and a recomputed partition would then hold other keys than the one
// it replaces. Partition p is recomputed from exactly the input it came from, or not at all: an
// input file that is missing or changed, or an upstream dataset deleted or replaced since, fails
// the reading job naming the dataset and what is missing.
import type { ShuffleWrite, SplitWire, StagePlan } from '../../api/tasks'
import type { NodeSpec } from '../../api/jobs'
import { leadingTo } from '../../engine/plan'

export type LineageStage = {
  /** stage_id is this stage's index in `Lineage.stages`; depends_on refers to those indexes */
  plan: StagePlan
  splits: SplitWire[]
  /** per split, the disks that held its file (placement.ts) */
  holders?: string[][]
  /** per sort shuffle this stage writes, the range bounds the persisting job used */
  bounds?: Record<string, unknown[]>
}

export type LineageFile = { path: string; size: number; mtimes?: Record<string, number> }

export type Lineage = {
  params: Record<string, unknown>
  stages: LineageStage[]
  /** every input file the source stages read, with its size when the persisting job was planned,
   *  and when it was last modified then on each disk that had it (absent: not known) */
  files: LineageFile[]
  /** the datasets it was computed from, with the owner it read (a replaced one is another) */
  datasets: { name: string; owner: string }[]
}

/** What lineageOf reads of a finished job's stage. */
export type RanStage = {
  plan: StagePlan; splits: readonly SplitWire[]; holders?: readonly (readonly string[])[]
  /** the sort bounds each of its sort writes used */
  bounds?: Record<string, unknown[]> | undefined
  /** it recomputed another dataset's partitions: never part of a lineage (its readers read that dataset) */
  recompute?: boolean
}

/** The shuffle ids a stage reads: its root's, and its broadcast joins' small sides. */
export function readsOf(plan: StagePlan): string[] {
  const root = plan.root
  const ids = root.kind === 'shuffle' ? [...root.shuffle_ids] : root.kind === 'cached' && root.dataset === undefined ? [root.cache_id] : []
  for (const b of plan.broadcasts ?? []) ids.push(b.shuffle_id)
  return ids
}

/** A persist write of this dataset made by the job that persisted it (not a recompute's). */
const writesDataset = (w: ShuffleWrite, name: string): boolean => w.persist === name && w.owner === undefined

/**
 * The lineage of dataset `name` in the stages of the job that persisted it: the stages that write
 * it and every stage they wait for, except a sort's sample stages (their bounds are kept instead).
 * Each is trimmed to what leads to the writes that lineage reads: another sink of the job (a write,
 * a collect) must never run again. Undefined when no stage writes it.
 */
export function lineageOf(stages: readonly RanStage[], name: string, params: Record<string, unknown>, mtimes?: ReadonlyMap<string, Record<string, number>>): Lineage | undefined {
  const usable = (st: RanStage | undefined): st is RanStage => st !== undefined && st.plan.sample_of === undefined && st.recompute !== true
  const hosts = stages.filter(st => usable(st) && st.plan.shuffle_writes.some(w => writesDataset(w, name)))
  if (hosts.length === 0) return undefined
  // Walked from the writes of the dataset back through what each trimmed stage reads: a stage the
  // job ran for something else (a broadcast join's small side feeding another sink of the stage)
  // is no part of the lineage, nor are its input files.
  const need = new Map<number, Set<string>>(hosts.map(h => [h.plan.stage_id, new Set<string>()]))
  const trimmed = new Map<number, { writes: ShuffleWrite[]; nodes: NodeSpec[]; broadcasts: NonNullable<StagePlan['broadcasts']> }>()
  const stack = hosts.map(h => h.plan.stage_id)
  while (stack.length > 0) {
    const id = stack.pop()!
    const st = stages[id]!
    const wanted = need.get(id)!
    const writes = st.plan.shuffle_writes.filter(w => writesDataset(w, name) || (w.persist === undefined && wanted.has(w.shuffle_id)))
    const nodes = leadingTo(st.plan.nodes, writes.map(w => w.from))
    const ids = new Set(nodes.map(n => n.id))
    const broadcasts = (st.plan.broadcasts ?? []).filter(b => ids.has(b.node_id))
    trimmed.set(id, { writes, nodes, broadcasts })
    const root = st.plan.root
    const reads = [...(root.kind === 'shuffle' ? root.shuffle_ids : root.kind === 'cached' && root.dataset === undefined ? [root.cache_id] : []), ...broadcasts.map(b => b.shuffle_id)]
    for (const sid of reads) {
      for (const w of stages) {
        if (!usable(w) || !w.plan.shuffle_writes.some(x => x.persist === undefined && x.shuffle_id === sid)) continue
        let n = need.get(w.plan.stage_id)
        if (n === undefined) need.set(w.plan.stage_id, n = new Set())
        if (n.has(sid)) continue
        n.add(sid)
        stack.push(w.plan.stage_id)
      }
    }
  }
  const order = [...need.keys()].sort((a, b) => a - b)
  const index = new Map(order.map((id, i) => [id, i]))
  const files = new Map<string, number>()
  const datasets: Lineage['datasets'] = []
  const out = order.map((id): LineageStage => {
    const st = stages[id]!
    const { writes, nodes, broadcasts } = trimmed.get(id)!
    // A dataset's blocks are looked up again when it is recomputed: they may have moved since.
    const root = st.plan.root.kind === 'cached' && st.plan.root.dataset !== undefined ? { ...st.plan.root, dataset: { ...st.plan.root.dataset, blocks: [] } } : st.plan.root
    const plan: StagePlan = {
      stage_id: index.get(id)!, root, nodes, shuffle_writes: writes, sinks: [],
      depends_on: st.plan.depends_on.filter(d => index.has(d)).map(d => index.get(d)!), partitions: st.plan.partitions,
      ...(broadcasts.length > 0 ? { broadcasts } : {}),
    }
    if (st.plan.root.kind === 'source') for (const sp of st.splits) files.set(sp.path, sp.file_size)
    if (root.kind === 'cached' && root.dataset !== undefined && !datasets.some(d => d.name === root.dataset!.name)) datasets.push({ name: root.dataset.name, owner: root.dataset.owner })
    const bounds = Object.fromEntries(Object.entries(st.bounds ?? {}).filter(([sid]) => writes.some(w => w.shuffle_id === sid)))
    return {
      plan, splits: [...st.splits], ...(st.holders === undefined ? {} : { holders: st.holders.map(h => [...h]) }),
      ...(Object.keys(bounds).length > 0 ? { bounds } : {}),
    }
  })
  return { params, stages: out, files: [...files].map(([path, size]) => ({ path, size, ...(mtimes?.get(path) === undefined ? {} : { mtimes: { ...mtimes.get(path)! } }) })), datasets }
}

/** A lineage file as a live worker's disk lists it now. */
export type SeenFile = { disk: string; size: number; mtimeMs?: number }

/** Why input files of a lineage cannot be read as they were: path → reason. `seen` is what the
 *  live workers' disks list now (one entry per disk that has the path). A file is changed when
 *  its size differs, or when a disk that had it then says it was modified since. */
export function inputProblems(files: readonly LineageFile[], seen: ReadonlyMap<string, readonly SeenFile[]>): Map<string, string> {
  const problems = new Map<string, string>()
  for (const f of files) {
    const now = seen.get(f.path) ?? []
    if (now.length === 0) { problems.set(f.path, `input file "${f.path}" is gone (no live worker's disk has it)`); continue }
    const resized = now.find(n => n.size !== f.size)
    if (resized !== undefined) { problems.set(f.path, `input file "${f.path}" changed since it was persisted (${resized.size} bytes now, ${f.size} then)`); continue }
    const touched = now.find(n => n.mtimeMs !== undefined && f.mtimes?.[n.disk] !== undefined && n.mtimeMs !== f.mtimes[n.disk])
    if (touched !== undefined) problems.set(f.path, `input file "${f.path}" changed since it was persisted (modified at ${new Date(touched.mtimeMs!).toISOString()}, after it was read)`)
  }
  return problems
}

/** A stage to add to the reading job. */
export type RecomputeStage = LineageStage & {
  /** the tasks that need not run: their partitions of the dataset are held */
  skip: boolean[]
  /** a stage that writes the dataset: the dataset partition of its task 0, and the lost ones it writes */
  writes?: { base: number; partitions: number[] }
}

export type RecomputePlan = { stages: RecomputeStage[]; writers: number[] } | { error: string }

/** Whether task `task` of a recompute stage keeps its block of the dataset: only a lost partition's
 *  does. A task that runs for another reason (its stage runs whole because a lost reduce partition
 *  needs every map output) must not keep a second copy of a partition the catalog still holds:
 *  nothing would read it, and it would count against the worker's memory until the dataset goes. */
export const keepsBlock = (writes: RecomputeStage['writes'], task: number): boolean =>
  writes === undefined || writes.partitions.includes(writes.base + task)

/** The message of a lost partition that cannot be recomputed. */
export const cannotRecompute = (name: string, lost: readonly number[], why: string): string =>
  `DATASET_LOST: dataset "${name}" partition${lost.length === 1 ? '' : 's'} ${lost.slice(0, 20).join(', ')}${lost.length > 20 ? ` and ${lost.length - 20} more` : ''} ` +
  `cannot be recomputed: ${why}: persist it again from its inputs`

/**
 * The stages that recompute `lost` partitions of dataset `name` (owned by `owner`), numbered from
 * `base` (the reading job's next stage id), their shuffles renamed with `prefix` so that they meet
 * none of the reading job's. A writing stage runs only its lost partitions' tasks when nothing
 * else needs it; every stage a running task waits for runs in full. `problems`: input files that
 * cannot be read as they were (inputProblems); `upstream(name, owner)`: the root of a dataset it
 * reads, if that dataset is still the one it read.
 */
export function planRecompute(o: {
  lineage: Lineage; name: string; owner: string; lost: readonly number[]; base: number; prefix: string
  problems: ReadonlyMap<string, string>
  upstream: (name: string, owner: string) => NonNullable<Extract<StagePlan['root'], { kind: 'cached' }>['dataset']> | undefined
}): RecomputePlan {
  const { lineage, name, lost } = o
  const st = lineage.stages
  // The writing stages, in stage order: their tasks are the dataset's partitions, numbered across them.
  const runs = new Map<number, number[]>()
  const firstOf = new Map<number, number>()
  let next = 0
  for (const s of st) {
    if (!s.plan.shuffle_writes.some(w => w.persist === name)) continue
    firstOf.set(s.plan.stage_id, next)
    const mine = lost.filter(p => p >= next && p < next + s.plan.partitions).map(p => p - next)
    if (mine.length > 0) runs.set(s.plan.stage_id, mine)
    next += s.plan.partitions
  }
  const beyond = lost.filter(p => p >= next)
  if (beyond.length > 0) return { error: cannotRecompute(name, beyond, `its lineage has ${next} partitions`) }
  // The stages those tasks need, in full.
  const needed = new Set<number>()
  const stack = [...runs.keys()]
  while (stack.length > 0) {
    const id = stack.pop()!
    if (needed.has(id)) continue
    needed.add(id)
    stack.push(...st[id]!.plan.depends_on)
  }
  const order = [...needed].sort((a, b) => a - b)
  const reads = new Set(order.flatMap(id => readsOf(st[id]!.plan)))
  const renumber = new Map(order.map((id, i) => [id, o.base + i]))
  const rename = (sid: string): string => o.prefix + sid
  const out: RecomputeStage[] = []
  for (const id of order) {
    const s = st[id]!
    const own = runs.get(id)
    // A writing stage whose other writes some needed stage reads runs whole: a reduce needs every map output.
    const whole = own === undefined || s.plan.shuffle_writes.some(w => w.persist === undefined && reads.has(w.shuffle_id))
    const skip = Array.from({ length: s.plan.partitions }, (_, p) => !whole && !own.includes(p))
    const running = skip.flatMap((x, p) => x ? [] : [p])
    const lostHere = own ?? []
    const why = (text: string) => ({ error: cannotRecompute(name, lostHere.length > 0 ? lostHere.map(p => p + firstOf.get(id)!) : lost, text) })
    const root = s.plan.root
    if (root.kind === 'source') {
      for (const p of running) {
        const path = s.splits[p]?.path
        if (path === undefined) return why(`its lineage has no split ${p} of "${root.node.id}"`)
        const problem = o.problems.get(path)
        if (problem !== undefined) return why(problem)
      }
    }
    let newRoot: StagePlan['root']
    let partitions = s.plan.partitions
    if (root.kind === 'source') newRoot = root
    else if (root.kind === 'shuffle') newRoot = { ...root, shuffle_ids: root.shuffle_ids.map(rename) }
    else if (root.dataset !== undefined) {
      const up = o.upstream(root.dataset.name, root.dataset.owner)
      if (up === undefined) return why(`it was computed from dataset "${root.dataset.name}", which was deleted or replaced since`)
      if (up.blocks.length !== partitions) return why(`dataset "${root.dataset.name}" it was computed from has ${up.blocks.length} partitions, not ${partitions}`)
      newRoot = { ...root, dataset: up }
      partitions = up.blocks.length
    } else newRoot = { ...root, cache_id: rename(root.cache_id) }
    const plan: StagePlan = {
      ...s.plan, stage_id: renumber.get(id)!, root: newRoot, partitions,
      depends_on: s.plan.depends_on.map(d => renumber.get(d)!),
      // A stage that writes none of the lost partitions (it runs for another stage) keeps no block.
      shuffle_writes: s.plan.shuffle_writes.filter(w => w.persist === undefined || own !== undefined)
        .map(w => w.persist !== undefined ? { ...w, owner: o.owner } : { ...w, shuffle_id: rename(w.shuffle_id) }),
      ...(s.plan.broadcasts === undefined ? {} : { broadcasts: s.plan.broadcasts.map(b => ({ ...b, shuffle_id: rename(b.shuffle_id) })) }),
    }
    const bounds = s.bounds === undefined ? undefined : Object.fromEntries(Object.entries(s.bounds).map(([sid, b]) => [rename(sid), b]))
    out.push({
      plan, splits: s.splits, ...(s.holders === undefined ? {} : { holders: s.holders }), ...(bounds === undefined ? {} : { bounds }), skip,
      ...(own === undefined ? {} : { writes: { base: firstOf.get(id)!, partitions: own.map(p => p + firstOf.get(id)!) } }),
    })
  }
  return { stages: out, writers: [...runs.keys()].map(id => renumber.get(id)!) }
}

/** The node id prefix of the lineage files a submit lists beside the job's own inputs. */
export const LINEAGE_LISTING = '~lineage~'

/** The input files of the lineages of datasets `names` and of the datasets those were computed
 *  from, each once. A name with a glob character is checked too (listed as `listingPath` gives
 *  it): the task that reads it checks only its size, and a file rewritten to the same size would
 *  otherwise be recomputed from silently. */
export function lineageFiles(names: Iterable<string>, datasets: ReadonlyMap<string, { owner: string; lineage?: Lineage }>): LineageFile[] {
  const files = new Map<string, LineageFile>()
  const seen = new Set<string>()
  const stack = [...names]
  while (stack.length > 0) {
    const name = stack.pop()!
    const d = datasets.get(name)
    if (d?.lineage === undefined || seen.has(d.owner)) continue
    seen.add(d.owner)
    for (const f of d.lineage.files) files.set(f.path, f)
    for (const up of d.lineage.datasets) stack.push(up.name)
  }
  return [...files.values()]
}

/** The path that lists exactly the file `path`: a worker takes a path with a glob character as a
 *  pattern, so such a name is listed with every pattern character escaped (it then matches only
 *  itself, and is answered under its own name). */
export const listingPath = (path: string): string => /[*?[{]/.test(path) ? path.replace(/[*?[\]{}\\]/g, '\\$&') : path

/** Each lineage file as the disks that listed it have it (node ids LINEAGE_LISTING + i). */
export function listedFiles(files: readonly { path: string }[],
  listings: readonly { disk: string; answer: { inputs: readonly { node_id: string; files: readonly { path: string; size: number; mtime_ms?: number }[] }[] } }[]): Map<string, SeenFile[]> {
  const seen = new Map<string, SeenFile[]>()
  for (const { disk, answer } of listings) {
    for (const i of answer.inputs) {
      if (!i.node_id.startsWith(LINEAGE_LISTING)) continue
      const want = files[Number(i.node_id.slice(LINEAGE_LISTING.length))]?.path
      for (const f of i.files) if (f.path === want) seen.set(f.path, [...seen.get(f.path) ?? [], { disk, size: f.size, ...(f.mtime_ms === undefined ? {} : { mtimeMs: f.mtime_ms }) }])
    }
  }
  return seen
}
