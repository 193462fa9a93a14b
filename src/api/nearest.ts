// "Did you mean ...?" for a mistyped name: a field of a job node, an op, a CLI command or flag.

/** Edit distance (insert, delete, replace, swap two neighbours), so "fnn", "inptu" and "subimt" are one or two away. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

/** The candidate closest to `name`, if it is close enough to be what was meant (else null). */
export function nearest(name: string, candidates: Iterable<string>): string | null {
  const lower = name.toLowerCase()
  let best: string | null = null
  let bestDistance = Infinity
  for (const c of candidates) {
    const distance = editDistance(lower, c.toLowerCase())
    if (distance < bestDistance) { best = c; bestDistance = distance }
  }
  // One edit in a short name, up to a third of a longer one: "fn" for "id" would be noise.
  const allowed = Math.max(1, Math.floor(name.length / 3))
  return best !== null && bestDistance <= allowed ? best : null
}

export const didYouMean = (name: string, candidates: Iterable<string>): string => {
  const n = nearest(name, candidates)
  return n === null ? '' : `did you mean "${n}"? `
}
