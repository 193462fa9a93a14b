// The operators a job may use (CONTRACT section 4). Apart from the job schema (jobs.ts) so that
// task threads, which check ops, do not load the HTTP framework.
export const OPS = [
  'read_text', 'read_jsonl', 'read_csv',
  'map', 'flat_map', 'filter', 'map_values', 'key_by', 'union',
  'reduce_by_key', 'group_by_key', 'join', 'distinct', 'sort',
  'write_text', 'write_jsonl', 'collect', 'count',
  // datasets kept on the workers across jobs (CONTRACT section 8)
  'persist', 'read_dataset',
  // built-ins: the engine's own operators, run on bytes where they can (src/engine/builtins)
  'words', 'grep', 'key_by_field', 'count_by_value', 'agg_by_key',
] as const
export type Op = (typeof OPS)[number]
