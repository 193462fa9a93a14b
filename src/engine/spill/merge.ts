// k-way merge of sorted sequences with a binary heap: n log k comparisons, one record per
// sequence in memory. Ties keep the order of the sequences (earlier runs first), so a merge of
// stable runs is stable.

export function* mergeSorted<T>(sources: readonly Iterator<T>[], compare: (a: T, b: T) => number): Generator<T> {
  type Head = { value: T; src: number }
  const heap: Head[] = []
  const less = (a: Head, b: Head): boolean => { const c = compare(a.value, b.value); return c < 0 || (c === 0 && a.src < b.src) }
  const up = (i: number): void => {
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(heap[i]!, heap[p]!)) return
      ;[heap[i], heap[p]] = [heap[p]!, heap[i]!]
      i = p
    }
  }
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r
      if (m === i) return
      ;[heap[i], heap[m]] = [heap[m]!, heap[i]!]
      i = m
    }
  }
  sources.forEach((it, src) => {
    const n = it.next()
    if (!n.done) { heap.push({ value: n.value, src }); up(heap.length - 1) }
  })
  while (heap.length > 0) {
    const top = heap[0]!
    yield top.value
    const n = sources[top.src]!.next()
    if (!n.done) { top.value = n.value; down(0) } else {
      const last = heap.pop()!
      if (heap.length > 0) { heap[0] = last; down(0) }
    }
  }
}
