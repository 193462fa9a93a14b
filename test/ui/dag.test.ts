// The DAG view behind the web UI (GET /jobs/:id/dag), from real stage plans: edges inside stages,
// shuffle edges between them, a sort's sampled ranges, and nodes computed in several stages.
import { describe, expect, test } from 'bun:test'
import type { JobRequest } from '../../src/api/jobs'
import { validateJob } from '../../src/engine/dag'
import { planStages } from '../../src/engine/plan'
import { jobDag } from '../../src/roles/master/routes/dag'

const view = (req: JobRequest) => jobDag('job-1', req, planStages(validateJob(req), 4))
const edges = (req: JobRequest): string[] =>
  view(req).edges.map(e => `${e.from_stage}:${e.from} -${e.kind}-> ${e.to_stage}:${e.to}`)

describe('the DAG view', () => {
  test('word count: two stages, narrow edges inside, one shuffle edge between', () => {
    const req: JobRequest = { nodes: [
      { id: 'lines', op: 'read_text', path: 'books' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
      { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 8 },
      { id: 'out', op: 'write_text', input: 'counts', path: 'out' },
    ] }
    const v = view(req)
    expect(v.stages.map(s => [s.stage_id, s.kind, s.nodes.map(n => n.id)])).toEqual([
      [0, 'source', ['lines', 'words', 'pairs']], [1, 'shuffle', ['counts', 'out']]])
    expect(edges(req)).toEqual(['0:lines -narrow-> 0:words', '0:words -narrow-> 0:pairs', '0:pairs -shuffle-> 1:counts', '1:counts -narrow-> 1:out'])
    expect(v.nodes.find(n => n.id === 'counts')).toEqual({ id: 'counts', op: 'reduce_by_key', inputs: ['pairs'], stage_ids: [1], detail: '(a, b) => a + b · 8 partitions' })
    expect(v.nodes.find(n => n.id === 'lines')?.detail).toBe('books')
  })

  test('a join reads two shuffles; a union runs in the stage of each input', () => {
    const req: JobRequest = { nodes: [
      { id: 'a', op: 'read_text', path: 'a' },
      { id: 'b', op: 'read_text', path: 'b' },
      { id: 'ka', op: 'key_by', input: 'a', fn: 'x => x' },
      { id: 'kb', op: 'key_by', input: 'b', fn: 'x => x' },
      { id: 'both', op: 'union', inputs: ['ka', 'kb'] },
      { id: 'j', op: 'join', inputs: ['ka', 'kb'] },
      { id: 'n', op: 'count', input: 'both' },
      { id: 'out', op: 'collect', input: 'j' },
    ] }
    const v = view(req)
    expect(edges(req).filter(e => e.includes('shuffle')).sort()).toEqual(['0:ka -shuffle-> 2:j', '1:kb -shuffle-> 2:j'])
    expect(v.nodes.find(n => n.id === 'both')?.stage_ids).toEqual([0, 1])
    // inside stage 0 the union reads ka only; kb reaches it in stage 1
    expect(edges(req)).toContain('0:ka -narrow-> 0:both')
    expect(edges(req)).toContain('1:kb -narrow-> 1:both')
    expect(edges(req)).not.toContain('0:kb -narrow-> 0:both')
  })

  test('a sort: its sample stage feeds the sort\'s ranges', () => {
    const req: JobRequest = { nodes: [
      { id: 'lines', op: 'read_text', path: 'x' },
      { id: 'sorted', op: 'sort', input: 'lines', key: 'l => l.length', descending: true },
      { id: 'out', op: 'collect', input: 'sorted' },
    ] }
    const v = view(req)
    const sample = v.stages.find(s => s.sample_of === 'sorted')
    expect(sample).toBeDefined()
    expect(sample!.nodes.map(n => n.op)).toEqual(['read_text', 'sample'])
    const sortStage = v.stages.find(s => s.nodes[0]?.id === 'sorted')!
    expect(v.edges).toContainEqual({ from_stage: sample!.stage_id, from: sample!.nodes[1]!.id, to_stage: sortStage.stage_id, to: 'sorted', kind: 'bounds' })
    expect(v.edges.filter(e => e.kind === 'shuffle' && e.to === 'sorted')).toHaveLength(1)
    expect(v.nodes.find(n => n.id === 'sorted')?.detail).toBe('key l => l.length · descending')
  })

  test('a job with no plan (refused before planning) gives its nodes without stages', () => {
    const v = jobDag('job-2', { nodes: [{ id: 'a', op: 'read_text', path: 'x' }] }, [])
    expect(v).toEqual({ job_id: 'job-2', nodes: [{ id: 'a', op: 'read_text', inputs: [], stage_ids: [], detail: 'x' }], stages: [], edges: [] })
  })
})
