// Time as a dependency: the real clock in production, a fake one in tests of the shells.
export interface Clock {
  now(): number
  every(ms: number, fn: () => void): void
  cancelAll(): void
}

export function realClock(): Clock {
  const timers: ReturnType<typeof setInterval>[] = []
  return {
    now: () => Date.now(),
    every(ms, fn) { timers.push(setInterval(fn, ms)) },
    cancelAll() { for (const t of timers) clearInterval(t); timers.length = 0 },
  }
}
