// Lineages and recompute plans (lineage.ts) checked against what they make the cluster do. A task
// that runs with the dataset's persist write keeps a block under the dataset's owner on its
// worker, and only the lost partitions' blocks are registered again (recompute.ts keepRecomputed):
// a task that runs for another reason (its stage runs whole because a needed stage reads its map
// output) must not keep a second, unregistered copy of a partition the catalog still holds (that
// copy is never read, never dropped while the dataset lives, and counts against --max-mem). A
// lineage holds only what the dataset was computed from, and each of its files is listed by its
// exact name, pattern characters and all.
import { describe, expect, test } from 'bun:test'
import type { JobId } from '../../../src/api/ids'
import type { JobRequest } from '../../../src/api/jobs'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { buildJobRun } from '../../../src/roles/master/planning'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { answerListing } from '../../../src/roles/worker/listing'
import { LINEAGE_LISTING, lineageOf, listedFiles, listingPath, planRecompute, keepsBlock } from '../../../src/roles/master/lineage'

const FILES = [{ path: 'in/a', size: 100 }, { path: 'in/b', size: 200 }, { path: 'in/c', size: 300 }]

function stagesOf(request: JobRequest) {
  const job = buildJobRun({ id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), defaultPartitions: 4, nowMs: 0,
    listing: { inputs: [{ node_id: 'lines', files: FILES.map(f => ({ ...f, disks: [`d-${f.path}`] })) }] } })
  return job.stages.map(st => ({ plan: st.plan, splits: st.splits, ...(st.holders === undefined ? {} : { holders: st.holders }) }))
}

describe('a recompute keeps only the lost partitions', () => {
  test('a union of a source and a reduce, lost partitions 1 (a split) and 4 (a reduce partition): no task keeps a block of a held partition', () => {
    const l = lineageOf(stagesOf({ partitions: 2, nodes: [
      { id: 'lines', op: 'read_text', path: 'in' },
      { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
      { id: 'both', op: 'union', inputs: ['pairs', 'counts'] },
      { id: 'keep', op: 'persist', input: 'both', name: 'wc' },
    ] }), 'wc', {})!
    const p = planRecompute({ lineage: l, name: 'wc', owner: 'j1~wc', lost: [1, 4], base: 5, prefix: 'wc~5~', problems: new Map(), upstream: () => undefined })
    if ('error' in p) throw new Error(p.error)
    // Dataset partitions whose blocks the tasks that run would keep, per stage.
    const kept: number[] = []
    for (const st of p.stages) {
      if (!st.plan.shuffle_writes.some(w => w.persist === 'wc')) continue
      const base = st.writes?.base ?? 0
      st.skip.forEach((skipped, task) => { if (!skipped && keepsBlock(st.writes, task)) kept.push(base + task) })
    }
    // The catalog takes back 1 and 4; 0 and 2 are still held where they were.
    expect(p.stages.flatMap(st => st.writes?.partitions ?? [])).toEqual([1, 4])
    expect(kept.sort()).toEqual([1, 4])
  })
})

describe('a lineage holds only what the dataset was computed from', () => {
  test('a dataset persisted beside a broadcast join it does not feed: the join\'s small file is no input of its lineage, and a change to it does not stop a recompute', () => {
    const request: JobRequest = { broadcast_bytes: 1000, nodes: [
      { id: 'lines', op: 'read_text', path: 'in' },
      { id: 'small', op: 'read_text', path: 'lookup.txt' },
      { id: 'x', op: 'key_by', input: 'lines', fn: 'l => l.slice(0, 1)' },
      { id: 'keep', op: 'persist', input: 'x', name: 'wc' },
      { id: 'k', op: 'key_by', input: 'small', fn: 'l => l.slice(0, 1)' },
      { id: 'j', op: 'join', inputs: ['x', 'k'] },
      { id: 'out', op: 'write_text', input: 'j', path: 'out' },
    ] }
    const job = buildJobRun({ id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), defaultPartitions: 4, nowMs: 0,
      listing: { inputs: [
        { node_id: 'lines', files: FILES.map(f => ({ ...f, size: f.size * 1000, disks: ['d1'] })) },
        { node_id: 'small', files: [{ path: 'lookup.txt', size: 10, disks: ['d1'] }] },
      ] } })
    // The join is a broadcast join in the stage that writes the dataset.
    expect(job.stages.some(st => (st.plan.broadcasts ?? []).length > 0 && st.plan.shuffle_writes.some(w => w.persist === 'wc'))).toBe(true)
    const l = lineageOf(job.stages.map(st => ({ plan: st.plan, splits: st.splits, ...(st.holders === undefined ? {} : { holders: st.holders }) })), 'wc', {})!
    // Partition p of "wc" is split p of "lines", keyed: nothing of lookup.txt.
    expect(l.files.map(f => f.path)).toEqual(['in/a', 'in/b', 'in/c'])
    const problems = new Map([['lookup.txt', 'input file "lookup.txt" changed since it was persisted (11 bytes now, 10 then)']])
    const p = planRecompute({ lineage: l, name: 'wc', owner: 'j1~wc', lost: [1], base: 5, prefix: 'wc~5~', problems, upstream: () => undefined })
    expect('error' in p ? p.error : 'recomputed').toBe('recomputed')
  })
})

describe('a lineage file listed by its exact name', () => {
  test('names with pattern characters (in the folder too) list only themselves, with their size; plain names are unchanged', () => {
    const root = mkdtempSync(join(tmpdir(), 'ms-listing-path-'))
    try {
      mkdirSync(join(root, 'd[1]'))
      mkdirSync(join(root, 'd1'))
      writeFileSync(join(root, 'd[1]', 'a*b'), 'xyz')
      writeFileSync(join(root, 'd1', 'ab'), 'other')
      writeFileSync(join(root, 'd[1]', 'a{1,2}?'), '12')
      writeFileSync(join(root, 'plain.txt'), 'p')
      const files = [{ path: 'd[1]/a*b' }, { path: 'd[1]/a{1,2}?' }, { path: 'plain.txt' }, { path: 'd[1]/gone' }]
      expect(listingPath('plain.txt')).toBe('plain.txt')
      const answer = answerListing(root, { inputs: files.map((f, i) => ({ node_id: `${LINEAGE_LISTING}${i}`, path: listingPath(f.path), allow_empty: true })), outputs: [] })
      expect(answer.errors).toEqual([])
      const seen = listedFiles(files, [{ disk: 'd', answer }])
      expect([...seen].map(([p, s]) => [p, s.map(x => x.size)])).toEqual([['d[1]/a*b', [3]], ['d[1]/a{1,2}?', [2]], ['plain.txt', [1]]])
      expect(answer.inputs.flatMap(i => i.files.map(f => f.path)).sort()).toEqual(['d[1]/a*b', 'd[1]/a{1,2}?', 'plain.txt'])
    } finally { rmSync(root, { recursive: true, force: true }) }
  })
})
