// A cluster of the compiled binary started by the bench itself (master and workers as separate
// processes, as `local` starts them), for the control-plane probes that submit many jobs.
import type { Subprocess } from 'bun'
import { stopPids } from './proc'

export type Started = { url: string; proc: Subprocess }

/** Starts `cmd` and waits for its "listening on URL" line. */
export async function startRole(cmd: string[], cwd: string, timeoutMs = 20_000): Promise<Started> {
  const proc = Bun.spawn(cmd, { cwd, stdin: 'ignore', stdout: 'pipe', stderr: 'ignore' })
  const reader = proc.stdout.getReader()
  const decoder = new TextDecoder()
  let text = ''
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const { value, done } = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => ({ value: undefined, done: true }))])
    if (done) break
    text += decoder.decode(value, { stream: true })
    const m = /listening on (\S+)/.exec(text)
    if (m) {
      // Keep draining stdout so the role never blocks on a full pipe.
      void (async () => { try { for (;;) { if ((await reader.read()).done) return } } catch { /* closed */ } })()
      return { url: m[1]!, proc }
    }
  }
  proc.kill('SIGKILL')
  throw new Error(`${cmd.join(' ')} did not say "listening on" within ${timeoutMs} ms: ${text.slice(-300)}`)
}

export type Cluster = { url: string; master: Started; workers: Started[]; stop(): Promise<void> }

export async function startCluster(o: { bin: string; cwd: string; stateDb: string; workDir: string; dataDir: string; workers: number; slots: number; maxMem: string }): Promise<Cluster> {
  const master = await startRole([o.bin, 'master', '--port', '0', '--state-db', o.stateDb], o.cwd)
  const workers: Started[] = []
  const stop = async (): Promise<void> => { await stopPids([...workers.map(w => w.proc.pid), master.proc.pid]) }
  try {
    for (let i = 1; i <= o.workers; i++) {
      workers.push(await startRole([o.bin, 'worker', '--master', master.url, '--port', '0', '--id', `bench-${i}`, '--slots', String(o.slots),
        '--max-mem', o.maxMem, '--data-dir', o.dataDir, '--work-dir', o.workDir], o.cwd))
    }
    const deadline = Date.now() + 20_000
    for (;;) {
      const live = (await (await fetch(`${master.url}/workers`)).json() as { status: string }[]).filter(w => w.status !== 'DEAD').length
      if (live >= o.workers) break
      if (Date.now() > deadline) throw new Error(`only ${live} of ${o.workers} workers registered`)
      await Bun.sleep(50)
    }
  } catch (e) {
    await stop()
    throw e
  }
  return { url: master.url, master, workers, stop }
}

export type JobState = { job_id: string; state: string; error: { message: string } | null }

export async function submit(url: string, job: unknown): Promise<string> {
  const res = await fetch(`${url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job) })
  const body = await res.json() as { job_id?: string; error?: { message: string } }
  if (body.job_id === undefined) throw new Error(`submit refused: ${body.error?.message ?? res.status}`)
  return body.job_id
}

/** Polls the job's status every `pollMs` (0: back to back) until it has finished. */
export async function waitJob(url: string, id: string, pollMs: number, timeoutMs: number): Promise<JobState> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const s = await (await fetch(`${url}/jobs/${id}`)).json() as JobState
    if (s.state === 'SUCCEEDED' || s.state === 'FAILED' || s.state === 'CANCELLED') return s
    if (Date.now() > deadline) return { ...s, state: `still ${s.state} after ${timeoutMs} ms` }
    if (pollMs > 0) await Bun.sleep(pollMs)
  }
}
