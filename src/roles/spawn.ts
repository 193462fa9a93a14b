// Starting this same program in another role: the compiled binary runs itself; from source,
// Bun runs the CLI script. Used by `local` and by the tests.
import type { Subprocess } from 'bun'

const CLI_SOURCE = new URL('../cli.ts', import.meta.url).pathname

export function selfCommand(args: readonly string[]): string[] {
  // Inside a `bun build --compile` executable, modules live under /$bunfs/.
  const compiled = import.meta.path.startsWith('/$bunfs/')
  return compiled ? [process.execPath, ...args] : [process.execPath, CLI_SOURCE, ...args]
}

export type Role = { proc: Subprocess<'ignore', 'pipe', 'inherit' | 'pipe'>; url: string }

/** Spawns a role and waits (bounded) for its "listening on URL" line. */
export async function spawnRole(cmd: readonly string[], o: { timeoutMs?: number; stderr?: 'inherit' | 'pipe'; env?: Record<string, string> } = {}): Promise<Role> {
  const proc = Bun.spawn([...cmd], { stdin: 'ignore', stdout: 'pipe', stderr: o.stderr ?? 'inherit', env: { ...process.env, ...o.env } })
  const url = await readListeningLine(proc.stdout, o.timeoutMs ?? 20_000).catch(e => { proc.kill('SIGKILL'); throw e })
  return { proc, url }
}

async function readListeningLine(out: ReadableStream<Uint8Array>, timeoutMs: number): Promise<string> {
  const reader = out.getReader()
  const decoder = new TextDecoder()
  let text = ''
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no "listening on" line within ${timeoutMs} ms`)), timeoutMs))
  const read = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`the process exited before listening: ${text.slice(-500)}`)
      text += decoder.decode(value, { stream: true })
      const m = /listening on (\S+)/.exec(text)
      if (m) { reader.releaseLock(); return m[1]! }
    }
  })()
  return Promise.race([read, timer])
}
