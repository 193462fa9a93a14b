// Starting this same program in another role: the compiled binary runs itself; from source,
// Bun runs the CLI script. Used by `local` and by the tests.
// A role started here lives no longer than its parent: its stdin is a pipe from the parent, and
// MINISPARK_EXIT_WITH_STDIN tells it to stop when that pipe closes, which the kernel does when
// the parent ends in any way, SIGKILL included.
import type { Subprocess } from 'bun'

const CLI_SOURCE = new URL('../cli.ts', import.meta.url).pathname
export const EXIT_WITH_STDIN_ENV = 'MINISPARK_EXIT_WITH_STDIN'
/** Given to the master of `local`: the temp dir it removes when it outlives its parent. */
export const LOCAL_DIR_ENV = 'MINISPARK_LOCAL_DIR'

export function selfCommand(args: readonly string[]): string[] {
  // Inside a `bun build --compile` executable, modules live under /$bunfs/.
  const compiled = import.meta.path.startsWith('/$bunfs/')
  return compiled ? [process.execPath, ...args] : [process.execPath, CLI_SOURCE, ...args]
}

export type Role = { proc: Subprocess<'pipe', 'pipe', 'inherit' | 'pipe'>; url: string }

/** Spawns a role and waits (bounded) for its "listening on URL" line. */
export async function spawnRole(cmd: readonly string[], o: {
  timeoutMs?: number; stderr?: 'inherit' | 'pipe'; env?: Record<string, string>
  /** called at once with the process, before it listens: so that it can be stopped while it starts */
  onSpawn?: (proc: Role['proc']) => void
} = {}): Promise<Role> {
  const proc = Bun.spawn([...cmd], {
    stdin: 'pipe', stdout: 'pipe', stderr: o.stderr ?? 'inherit', env: { ...process.env, ...o.env, [EXIT_WITH_STDIN_ENV]: '1' },
  })
  o.onSpawn?.(proc)
  const url = await readListeningLine(proc.stdout, o.timeoutMs ?? 20_000).catch(e => { proc.kill('SIGKILL'); throw e })
  return { proc, url }
}

async function readListeningLine(out: ReadableStream<Uint8Array>, timeoutMs: number): Promise<string> {
  const reader = out.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no "listening on" line within ${timeoutMs} ms`)), timeoutMs) })
  const read = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`the process exited before listening: ${text.slice(-500)}`)
      text += decoder.decode(value, { stream: true })
      const m = /listening on (\S+)/.exec(text)
      if (m) { reader.releaseLock(); return m[1]! }
    }
  })()
  // The timer goes as soon as the line is read: a pending timer keeps a program alive.
  try { return await Promise.race([read, timeout]) } finally { clearTimeout(timer) }
}

/** Resolves when stdin reaches its end (the parent that holds the pipe has gone). */
export async function stdinClosed(): Promise<void> {
  const reader = Bun.stdin.stream().getReader()
  try {
    for (;;) if ((await reader.read()).done) return
  } catch { /* a read error means the pipe is gone too */ }
}
