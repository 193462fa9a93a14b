// A reduce task's input: its partition of every map output, fetched from the peers that hold them
// (two requests in flight, of bounded size), decoded and handed to the reducer, a join, or a
// broadcast join's table. A peer that cannot serve fails the task with fetch-failed naming it.
import type { TaskSpec } from '../../../api/tasks'
import { PeerError, type PeerClient } from '../../../api/peers'
import { decodeBatch, FrameDecoder } from '../../../engine/codec'
import { batchLength } from '../../../engine/string-frames'
import type { Consumer } from '../../../engine/pipeline'
import { UdfError } from '../../../engine/records'
import { createReducer } from '../../../engine/shuffle'
import { HashJoin } from '../../../engine/operators/join'
import { Reservation, estimateBytes, type SharedBudget } from '../../../engine/spill/budget'
import type { SpillContext } from '../../../engine/spill/external'
import { StreamingJoin } from '../../../engine/spill/join'
import { FetchFailed } from './failures'

export type Counts = { records: number; bytes: number }
export type Fetcher = {
  peers: PeerClient
  spillAtBytes: number
  /** told the size of every chunk fetched: the task's garbage grows with it (young-gc.ts) */
  fetched: (bytes: number) => void
}

const BROADCAST_BATCH = 8192

/** A request asks for at most this many bytes (of blocks that each say their size). What is in
 *  flight is memory outside the budget: at 64 MiB, a join's reduce side over 3 GiB at --max-mem
 *  1GiB peaked at 1163 MiB resident, at 16 MiB 1025 MiB (one run each; runs differ by up to
 *  ~100 MiB), and ran no slower. */
const MAX_REQUEST_BYTES = 16 << 20

/**
 * The stage's broadcast joins, each with its small side fetched whole (partition 0 of its shuffle,
 * from every map output) into the hash join's table. Held for the whole task and counted against
 * the budget; one that does not fit fails the task with what to do, since the table cannot spill
 * (the planner only broadcasts inputs of at most `broadcast_bytes`).
 */
export async function fetchBroadcasts(spec: TaskSpec, f: Fetcher, budget: SharedBudget, counts: Counts): Promise<Map<string, HashJoin>> {
  const joins = new Map<string, HashJoin>()
  for (const b of spec.stage.broadcasts ?? []) {
    const node = spec.stage.nodes.find(n => n.id === b.node_id)!
    const join = new HashJoin(node, b.side, BROADCAST_BATCH)
    const inputs = spec.shuffle_inputs.filter(i => i.shuffle_id === b.shuffle_id)
    const held = new Reservation(budget)   // given back with the rest of the task's budget
    await fetchAll(spec, f, fetchRequests(spec, f, inputs, 0), (_side, batch) => {
      let bytes = join.build(batch)
      for (const r of batch) bytes += 48 + estimateBytes(r)
      // A refusal for memory pressure comes once per raise (budget.ts): a broadcast table cannot
      // spill, so it asks again, and only a budget really out fails the task.
      if (!held.grow(bytes) && !held.grow(0)) {
        throw new Error(`the small side of join "${b.node_id}" (over ${Math.ceil(held.bytes / 2 ** 20)} MiB in memory) does not fit this worker's memory budget: give workers more --max-mem, or set "broadcast_bytes" lower on the job (0: never broadcast)`)
      }
    }, counts)
    joins.set(b.node_id, join)
  }
  return joins
}

export async function reduceShuffle(spec: TaskSpec, f: Fetcher, root: Consumer, spill: SpillContext): Promise<Counts> {
  if (spec.stage.root.kind !== 'shuffle') throw new Error('not a shuffle stage')
  const node = spec.stage.root.node
  const counts = { records: 0, bytes: 0 }
  if (node.op === 'join') {
    await joinShuffle(spec, f, root, spill, spec.stage.root.shuffle_ids, counts)
    return counts
  }
  const reducer = createReducer(node, spec.params, spill)
  const ids = spec.stage.root.shuffle_ids   // not the stage's broadcast inputs
  const own = spec.shuffle_inputs.filter(i => ids.includes(i.shuffle_id))
  await fetchAll(spec, f, fetchRequests(spec, f, own), (side, batch) => reducer.push(side, batch), counts, reducer.pushFrame)
  reducer.emit(root)
  return counts
}

/** A cached stage's input: the one block its partition kept (reduce partition 0 of one map
 *  output), fetched from its holder (this worker's own shuffle service when it runs there), its
 *  records pushed through the stage as they are decoded. */
export async function readCached(spec: TaskSpec, f: Fetcher, root: Consumer): Promise<Counts> {
  if (spec.stage.root.kind !== 'cached') throw new Error('not a cached stage')
  const id = spec.stage.root.cache_id
  const counts = { records: 0, bytes: 0 }
  // A persisted dataset's blocks are held under its owner, not under this job.
  const owner = spec.stage.root.dataset?.owner
  await fetchAll(owner === undefined ? spec : { ...spec, job_id: owner }, f, fetchRequests(spec, f, spec.shuffle_inputs.filter(i => i.shuffle_id === id), 0), (_side, batch) => root.push(batch), counts)
  return counts
}

/**
 * A join reads its smaller input first (by the bytes the map outputs report) into a hash table,
 * then streams the other past it: joined records flow on while the larger input is still being
 * fetched, and it is never held. When the build side does not fit the budget, StreamingJoin falls
 * back to the spilling sort-merge join.
 */
async function joinShuffle(spec: TaskSpec, f: Fetcher, root: Consumer, spill: SpillContext, sideOf: readonly string[], counts: Counts): Promise<void> {
  const inputsOf = (side: number): TaskSpec['shuffle_inputs'] => spec.shuffle_inputs.filter(i => sideOf.indexOf(i.shuffle_id) === side)
  // An output that did not say its size counts as large: the side known to be small is built.
  const bytesOf = (side: number): number => inputsOf(side).reduce((n, i) => n + i.map_outputs.reduce((m, o) => m + (o.bytes ?? Infinity), 0), 0)
  const buildSide: 0 | 1 = bytesOf(0) < bytesOf(1) ? 0 : 1
  const join = new StreamingJoin(spec.stage.root.node, buildSide, spill, root)
  await fetchAll(spec, f, fetchRequests(spec, f, inputsOf(buildSide)), (_side, batch) => join.build(batch), counts)
  await fetchAll(spec, f, fetchRequests(spec, f, inputsOf(1 - buildSide)), (_side, batch) => join.probe(batch), counts)
  join.finish()
}

type FetchRequest = { address: string; worker: string; shuffle: string; side: number; partition: number; attempts: string[]; bytes: number }

/** The fetches of some shuffle inputs, batched per peer, peers interleaved. */
function fetchRequests(spec: TaskSpec, f: Fetcher, inputs: TaskSpec['shuffle_inputs'], partition = spec.partition): FetchRequest[] {
  const sideOf = spec.stage.root.kind === 'shuffle' ? spec.stage.root.shuffle_ids : []
  // Requests of bounded size, two at a time: the HTTP client buffers a response as fast as the
  // network gives it, whatever the reducer can take, so what is in flight must fit the budget.
  const maxRequestBytes = Math.max(1 << 20, Math.min(MAX_REQUEST_BYTES, Math.floor(f.spillAtBytes / 4)))
  const requests: FetchRequest[] = []
  for (const input of inputs) {
    // A join reads two shuffles: the side tells its reducer which input a batch belongs to.
    const side = Math.max(0, sideOf.indexOf(input.shuffle_id))
    const byAddress = new Map<string, FetchRequest[]>()
    for (const m of input.map_outputs) {
      const list = byAddress.get(m.address) ?? []
      const last = list.at(-1)
      const size = m.bytes ?? maxRequestBytes
      if (last !== undefined && last.bytes + size <= maxRequestBytes) { last.attempts.push(m.attempt_id); last.bytes += size }
      else list.push({ address: m.address, worker: m.worker_id, shuffle: input.shuffle_id, side, partition, attempts: [m.attempt_id], bytes: size })
      byAddress.set(m.address, list)
    }
    // Interleave peers, so that two requests in flight go to two peers where they can.
    const lists = [...byAddress.values()]
    for (let i = 0; lists.some(l => i < l.length); i++) for (const l of lists) if (i < l.length) requests.push(l[i]!)
  }
  return requests
}

type OnBatch = (side: number, batch: unknown[]) => void
/** takes a frame's leading records from its bytes; returns how many (see Reducer.pushFrame) */
type OnFrame = (side: number, buf: Uint8Array, start: number, end: number) => number

/** Runs the requests two at a time, handing each decoded batch to `onBatch` as it arrives; with
 *  `onFrame`, each frame goes there first, and only the records it did not take are decoded. */
async function fetchAll(spec: TaskSpec, f: Fetcher, requests: FetchRequest[], onBatch: OnBatch, counts: Counts, onFrame?: OnFrame): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < requests.length) await fetchBlocks(spec, f, requests[next++]!, onBatch, counts, onFrame)
  }
  await Promise.all([lane(), lane()])
}

async function fetchBlocks(spec: TaskSpec, f: Fetcher, r: FetchRequest, onBatch: OnBatch, counts: Counts, onFrame?: OnFrame): Promise<void> {
  const body = { job_id: spec.job_id, shuffle_id: r.shuffle, reduce_partition: r.partition, attempts: r.attempts }
  const decoder = new FrameDecoder()
  // What the records meet downstream (a join streams them through the rest of the stage: its
  // functions, spills, sinks) fails the task as it is; only the transfer and decoding failing is the
  // peer's fault, to be answered by recomputing its outputs.
  let downstream: unknown
  try {
    // A frame whose records were not all taken as bytes is decoded here, where a corrupt one is
    // the peer's fault like any other.
    const take = onFrame === undefined ? null : (buf: Uint8Array, start: number, end: number): void => {
      let taken: number
      try { taken = onFrame(r.side, buf, start, end) } catch (e) { downstream = e; throw e }
      const n = batchLength(buf, start, end)
      if (taken === n) { counts.records += n; return }
      const batch = decodeBatch(buf, start, end)
      counts.records += batch.length
      try { onBatch(r.side, taken === 0 ? batch : batch.slice(taken)) } catch (e) { downstream = e; throw e }
    }
    for await (const chunk of f.peers.shuffle(r.address, `worker ${r.worker} at ${r.address}`, body)) {
      counts.bytes += chunk.length
      f.fetched(chunk.length)
      if (take !== null) { decoder.pushFrames(chunk, take); continue }
      for (const batch of decoder.batches(chunk)) {
        counts.records += batch.length
        try { onBatch(r.side, batch) } catch (e) { downstream = e; throw e }
      }
    }
    decoder.finish()
  } catch (e) {
    if (e === downstream || e instanceof UdfError) throw e
    const unreachable = e instanceof PeerError && e.kind === 'unreachable'
    // A peer that answers 404 to a request for one attempt's block lacks just that block (a cached
    // partition dropped under memory pressure): only it needs recomputing.
    const missing = e instanceof PeerError && e.status === 404 && r.attempts.length === 1 ? r.attempts[0] : undefined
    throw new FetchFailed(r.worker, `shuffle ${r.shuffle} from worker ${r.worker} at ${r.address} failed: ${(e as Error).message}`, unreachable, missing)
  }
}
