// Type tests of the SDK, checked by `tsc --noEmit` (npm test, and test/sdk/types.test.ts on this
// file alone). Each `@ts-expect-error` line must be an error: if the SDK ever accepted it, tsc
// would fail with "Unused '@ts-expect-error' directive". Nothing here runs.
import type { AsJson, Dataset, KeyedDataset, Session } from 'minispark'

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false
const same = <A, B>(_proof: Equal<A, B>): void => {}

export function typeTests(ms: Session): void {
  const lines = ms.textFile('books/*.txt')
  same<typeof lines, Dataset<string>>(true)

  // Dataset<string> → Dataset<[string, number]>, keyed: reduceByKey exists there.
  const pairs = lines.flatMap(l => l.split(' ')).map(w => [w, 1] as const)
  same<typeof pairs, KeyedDataset<string, number>>(true)
  const counts = pairs.reduceByKey((a, b) => a + b)
  const asPairs: Dataset<[string, number]> = counts
  void asPairs
  // Without `as const`, an array literal of two is read as a pair too.
  same<ReturnType<typeof lines.map<[string, number]>>, KeyedDataset<string, number>>(true)
  const pairs2 = lines.map(w => [w, w.length])
  same<typeof pairs2, KeyedDataset<string, number>>(true)

  // reduceByKey, groupByKey, join and mapValues are refused on a dataset that is not keyed.
  // @ts-expect-error reduceByKey does not exist on Dataset<string>
  lines.reduceByKey((a: string, b: string) => a + b)
  // @ts-expect-error groupByKey does not exist on Dataset<string>
  lines.groupByKey()
  // @ts-expect-error mapValues does not exist on Dataset<string>
  lines.mapValues((v: string) => v)
  // @ts-expect-error join does not exist on Dataset<string>
  lines.join(counts)
  // a record of three is not a key-value pair
  // @ts-expect-error reduceByKey does not exist on Dataset<(string | number)[]>
  lines.map(w => [w, 1, 2]).reduceByKey((a, b) => a)

  // The reducer's type follows the values: numbers here, not strings.
  // @ts-expect-error (a: number, b: number) => string is not a reducer of numbers
  counts.reduceByKey((a, b) => `${a}${b}`)

  // filter and distinct keep the dataset's type (and keyedness).
  const big = counts.filter(([, n]) => n > 2).distinct()
  same<typeof big, KeyedDataset<string, number>>(true)

  // keyBy, groupByKey, mapValues and joins carry key and value types.
  const byLen = lines.keyBy(l => l.length)
  same<typeof byLen, KeyedDataset<number, string>>(true)
  same<ReturnType<typeof byLen.groupByKey>, KeyedDataset<number, string[]>>(true)
  const lens = counts.mapValues(n => String(n))
  same<typeof lens, KeyedDataset<string, string>>(true)
  const joined = counts.join(lens)
  same<typeof joined, KeyedDataset<string, [number, string]>>(true)
  const left = counts.join(lens, { how: 'left' })
  same<typeof left, KeyedDataset<string, [number, string | null]>>(true)
  same<ReturnType<typeof counts.fullOuterJoin<string, {}>>, KeyedDataset<string, [number | null, string | null]>>(true)
  // @ts-expect-error keys must match: a number-keyed dataset does not join a string-keyed one
  counts.join(byLen)

  // Actions return typed results.
  const collected: Promise<[string, number][]> = counts.collect()
  const n: Promise<number> = lines.count()
  void collected; void n
  // @ts-expect-error collect() of Dataset<string> gives strings, not numbers
  const wrong: Promise<number[]> = lines.collect()
  void wrong

  // params: the functions' last parameter is typed by withParams.
  const common = counts.withParams({ minCount: 2 }).filter(([, c], p) => c >= p.minCount)
  same<typeof common, KeyedDataset<string, number, { minCount: number }>>(true)
  // @ts-expect-error params holds only what withParams gave
  counts.withParams({ minCount: 2 }).filter(([, c], p) => c >= p.maxCount)

  // Sources: jsonl takes the record type, csv gives objects (arrays without a header).
  same<ReturnType<typeof ms.jsonl<{ id: number }>>, Dataset<{ id: number }>>(true)
  same<ReturnType<typeof ms.jsonl<[string, number]>>, KeyedDataset<string, number>>(true)
  const rows = ms.csv('people.csv')
  same<typeof rows, Dataset<Record<string, string>>>(true)
  const raw = ms.csv('people.csv', { header: false })
  same<typeof raw, Dataset<string[]>>(true)
  same<ReturnType<typeof lines.union<{ a: number }>>, Dataset<string, { a: number }>>(true)
  const both = counts.withParams({ a: 1 }).union(counts.withParams({ b: 'x' }))
  same<typeof both, KeyedDataset<string, number, { a: number } & { b: string }>>(true)
  // @ts-expect-error union takes datasets of the same record type
  lines.union(counts)

  // Results come back through JSON, and their type says so: a Date is a string, a Map an empty
  // object, an undefined field optional; plain records keep their own type.
  type Event = { at: Date; tags: Map<string, number>; note?: string; n: number; f: () => void }
  const events = ms.jsonl<Event>('events.jsonl').collect()
  same<typeof events, Promise<{ at: string; tags: Record<string, never>; note?: string; n: number }[]>>(true)
  // @ts-expect-error a collected Date is a string, not a Date
  const dates: Promise<Date[]> = ms.jsonl<Date>('d.jsonl').collect()
  void dates
  same<AsJson<[string, number]>, [string, number]>(true)
  same<AsJson<readonly [string, { a: number[] }]>, [string, { a: number[] }]>(true)

  // csv rows typed by their header's columns
  const people = ms.csv<'id' | 'country'>('people.csv')
  same<typeof people, Dataset<{ id: string; country: string }>>(true)
  people.map(p => p.country.toUpperCase())
  // @ts-expect-error "age" is not a column of the header given
  people.map(p => p.age)
  // columns and types: only those columns, typed ones parsed (null when empty)
  const orders = ms.csv('orders.csv', { columns: ['customer_id', 'amount', 'qty'], types: { amount: 'cents', qty: 'int' } })
  same<typeof orders, Dataset<{ customer_id: string; amount: number | null; qty: number | null }>>(true)
  const named = ms.csv('orders.csv', { columns: ['id', 'note'], types: { note: 'string' } })
  same<typeof named, Dataset<{ id: string; note: string }>>(true)
  // @ts-expect-error "amount" is dropped by columns
  orders.map(o => o.amount + o.total)
  // @ts-expect-error a type names a column that columns does not keep
  ms.csv('orders.csv', { columns: ['id'], types: { amount: 'cents' } })
  // @ts-expect-error not a type of read_csv
  ms.csv('orders.csv', { columns: ['id'], types: { id: 'date' } })
  const typedOnly = ms.csv<'id' | 'amount'>('orders.csv', { types: { amount: 'number' } })
  same<typeof typedOnly, Dataset<{ id: string | number | null; amount: string | number | null }>>(true)

  // a step takes its name; so do sources
  same<ReturnType<typeof lines.map<number>>, Dataset<number>>(true)
  lines.map(l => l.length, { name: 'lengths' }).filter(n => n > 0, { name: 'nonEmpty' })
  ms.textFile('x', { name: 'input' }).count()
  // @ts-expect-error a name is a string
  lines.map(l => l, { name: 3 })

  // cache and persist keep the dataset's type; unpersist is a promise; session.dataset takes the record type
  same<ReturnType<typeof counts.cache>, KeyedDataset<string, number>>(true)
  same<ReturnType<typeof counts.persist>, KeyedDataset<string, number>>(true)
  const kept = lines.persist('disk').persist({ name: 'lines', level: 'memory', replace: true })
  same<typeof kept, Dataset<string>>(true)
  const freed: Promise<void> = kept.unpersist()
  void freed
  // @ts-expect-error a level is memory, memory_and_disk or disk
  lines.persist('fast')
  // @ts-expect-error persist's options are name, level and replace
  lines.persist({ label: 'x' })
  same<ReturnType<typeof ms.dataset<[string, number]>>, KeyedDataset<string, number>>(true)
  same<ReturnType<typeof ms.dataset<string>>, Dataset<string>>(true)
  const listed: Promise<{ name: string; state: 'AVAILABLE' | 'LOST' }[]> = ms.datasets()
  void listed
}
