#!/usr/bin/env bun
// The one entry of the binary: parses flags and starts one role or one client command.
// Exit codes: 0 success, 1 the job failed or was cancelled, 2 usage error, 3 master unreachable.
import { availableParallelism, totalmem } from 'node:os'
import { readFileSync } from 'node:fs'
import { ClientError, MasterClient } from './api/client'
import type { JobRequest, JobStatus } from './api/jobs'
import { HELP } from './cli/help'
import { opsOf, progressPrinter } from './cli/progress'
import { UsageError, bool, opt, parseDurationMs, parseFlags, parseInteger, parseSizeBytes, str, type FlagSpec, type Parsed } from './cli/flags'
import { VERSION } from './roles/http'
import { startMaster } from './roles/master/index'
import { startWorker } from './roles/worker/index'
import { renderResult, runLocal } from './roles/local'
import { selfCommand } from './roles/spawn'
import { floorWarning } from './roles/memory-floor'

const COMMON: FlagSpec = { help: 'boolean' }
const CLIENT: FlagSpec = { ...COMMON, master: 'string', json: 'boolean' }
const SPECS: Record<string, FlagSpec> = {
  master: { ...COMMON, host: 'string', port: 'string', 'state-db': 'string', 'heartbeat-timeout': 'string', 'token-file': 'string', insecure: 'boolean' },
  worker: { ...COMMON, master: 'string', host: 'string', port: 'string', advertise: 'string', id: 'string', slots: 'string', 'max-mem': 'string',
    'data-dir': 'string', 'work-dir': 'string', 'heartbeat-interval': 'string', 'token-file': 'string', insecure: 'boolean' },
  submit: { ...CLIENT, follow: 'boolean' },
  status: CLIENT, cancel: CLIENT, workers: CLIENT,
  local: { ...COMMON, workers: 'string', slots: 'string', 'max-mem': 'string', 'data-dir': 'string', keep: 'boolean', json: 'boolean', 'heartbeat-timeout': 'string' },
}

const masterUrl = (p: Parsed): string => str(p, 'master', process.env.MINISPARK_MASTER ?? 'http://127.0.0.1:8080').replace(/\/+$/, '')

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === 'help') { console.log(HELP.main); return command === undefined ? 2 : 0 }
  if (command === '--version') { console.log(`minispark ${VERSION}`); return 0 }
  const spec = SPECS[command]
  if (spec === undefined) throw new UsageError(`unknown command "${command}": see minispark --help`)
  const p = parseFlags(rest, spec)
  if (bool(p, 'help')) { console.log(HELP[command]); return 0 }
  switch (command) {
    case 'master': return runMaster(p)
    case 'worker': return runWorker(p)
    case 'submit': return submit(p)
    case 'status': return status(p)
    case 'cancel': return cancel(p)
    case 'workers': return workers(p)
    case 'local': return local(p)
  }
  return 2
}

const withToken = (t: string | undefined): { token?: string } => t === undefined ? {} : { token: t }

function checkBind(role: string, host: string, p: Parsed): void {
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.')
  if (!loopback && !bool(p, 'insecure') && readToken(p) === undefined) {
    throw new UsageError(`refusing to run the ${role} on ${host} without a token: give --token-file (or MINISPARK_TOKEN), or --insecure on a trusted network`)
  }
}

function runMaster(p: Parsed): Promise<number> {
  const host = str(p, 'host', '127.0.0.1')
  checkBind('master', host, p)
  const m = startMaster({
    host, port: parseInteger('port', str(p, 'port', '8080'), 0, 65535), stateDb: str(p, 'state-db', 'minispark-master.db'),
    heartbeatTimeoutMs: parseDurationMs('heartbeat-timeout', str(p, 'heartbeat-timeout', '10s')),
    ...withToken(readToken(p)),
  })
  console.log(`minispark master listening on ${m.url}`)
  return untilSignal(async () => m.stop())
}

async function runWorker(p: Parsed): Promise<number> {
  const maxMemBytes = parseSizeBytes('max-mem', str(p, 'max-mem', '1GiB'))
  sizeHeapsToBudget(maxMemBytes)
  const host = str(p, 'host', '127.0.0.1')
  checkBind('worker', host, p)
  const master = opt(p, 'master') ?? process.env.MINISPARK_MASTER
  if (master === undefined) throw new UsageError('worker needs --master http://HOST:PORT (or MINISPARK_MASTER)')
  const id = opt(p, 'id')
  const advertise = opt(p, 'advertise')
  const slots = parseInteger('slots', str(p, 'slots', String(availableParallelism())), 1, 1024)
  const floor = floorWarning(maxMemBytes, slots)
  if (floor !== null) console.error(`minispark worker: ${floor}`)
  const w = await startWorker({
    masterUrl: master.replace(/\/+$/, ''), host, port: parseInteger('port', str(p, 'port', '8081'), 0, 65535),
    ...(advertise === undefined ? {} : { advertise }), ...(id === undefined ? {} : { id }),
    slots,
    maxMemBytes,
    dataDir: str(p, 'data-dir', '.'), workDir: str(p, 'work-dir', './minispark-work'),
    heartbeatIntervalMs: parseDurationMs('heartbeat-interval', str(p, 'heartbeat-interval', '3s')),
    ...withToken(readToken(p)),
  })
  console.log(`minispark worker listening on ${w.url}`)
  return untilSignal(() => w.stop())
}

/**
 * JavaScriptCore sizes its heaps from the machine's memory: on a large machine it lets garbage
 * pile up far past a small --max-mem before collecting. Its options are read once, at process
 * start, from the environment; so a worker re-executes itself (same pid, same arguments) with the
 * machine's memory stated as 8× its budget, unless the variable is set already.
 */
function sizeHeapsToBudget(maxMemBytes: number): void {
  if (process.env.BUN_JSC_forceRAMSize !== undefined) return
  const ram = Math.min(totalmem(), Math.max(64 << 20, 8 * maxMemBytes))
  if (ram >= totalmem() || typeof process.execve !== 'function') return
  process.execve(process.execPath, selfCommand(process.argv.slice(2)), { ...process.env, BUN_JSC_forceRAMSize: String(ram) })
}

/** Runs until SIGTERM or SIGINT, then stops cleanly. */
function untilSignal(stop: () => Promise<void>): Promise<number> {
  return new Promise(resolve => {
    const onSignal = (): void => { void stop().finally(() => resolve(0)) }
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
  })
}

function readJob(p: Parsed): JobRequest {
  const file = p.positionals[0]
  if (file === undefined) throw new UsageError('give the job file: minispark submit JOB.json')
  let text: string
  try { text = readFileSync(file, 'utf8') } catch (e) { throw new UsageError(`cannot read job file ${file}: ${(e as Error).message}`) }
  try { return JSON.parse(text) as JobRequest } catch (e) { throw new UsageError(`job file ${file} is not valid JSON: ${(e as Error).message}`) }
}

/** --token-file wins over MINISPARK_TOKEN; an empty token is a usage error, never "no auth". */
function readToken(p?: Parsed): string | undefined {
  const file = p === undefined ? undefined : opt(p, 'token-file')
  let t: string | undefined
  if (file !== undefined) {
    try { t = readFileSync(file, 'utf8').trim() } catch (e) { throw new UsageError(`--token-file ${file}: ${(e as Error).message}`) }
    if (t === '') throw new UsageError(`--token-file ${file} is empty: put the cluster's token in it`)
  } else t = process.env.MINISPARK_TOKEN?.trim() || undefined
  return t
}
const token = (): string | undefined => readToken()

async function submit(p: Parsed): Promise<number> {
  const job = readJob(p)
  const client = new MasterClient(masterUrl(p), token())
  const id = await client.submit(job)
  if (!bool(p, 'follow')) { console.log(bool(p, 'json') ? JSON.stringify({ job_id: id }) : id); return 0 }
  console.log(id)
  const final = await client.waitDone(id, { timeoutMs: 7 * 24 * 3600_000, pollMs: 200, onStatus: progressPrinter({ ops: opsOf(job) }) })
  return finish(final)
}

function finish(s: JobStatus): number {
  if (s.state === 'SUCCEEDED') return 0
  if (s.error) {
    console.error(`job ${s.job_id} ${s.state}: ${s.error.message}` + (s.error.node_id ? ` (node ${s.error.node_id})` : '') +
      (s.error.record ? `\n  record: ${s.error.record}` : ''))
  } else console.error(`job ${s.job_id} ${s.state}`)
  return 1
}

async function status(p: Parsed): Promise<number> {
  const client = new MasterClient(masterUrl(p), token())
  const id = p.positionals[0]
  if (id !== undefined) {
    const s = await client.status(id)
    if (bool(p, 'json')) console.log(JSON.stringify(s, null, 2))
    else {
      console.log(`${s.job_id} ${s.name} ${s.state} ${(s.progress * 100).toFixed(0)}%`)
      for (const st of s.stages) console.log(`  stage ${st.stage_id} ${st.state} ${st.tasks.succeeded}/${st.tasks.total} [${st.node_ids.join(' → ')}]`)
      if (s.error) console.log(`  error: ${s.error.message}${s.error.node_id ? ` (node ${s.error.node_id})` : ''}`)
    }
    return 0
  }
  const jobs = await client.jobs()
  if (bool(p, 'json')) console.log(JSON.stringify(jobs, null, 2))
  else for (const j of jobs) console.log(`${j.job_id}  ${j.state.padEnd(9)} ${(j.progress * 100).toFixed(0).padStart(3)}%  ${j.name}  ${j.submitted_at}`)
  return 0
}

async function cancel(p: Parsed): Promise<number> {
  const id = p.positionals[0]
  if (id === undefined) throw new UsageError('give the job id: minispark cancel JOB_ID')
  const s = await new MasterClient(masterUrl(p), token()).cancel(id)
  console.log(`${s.job_id} ${s.state}`)
  return 0
}

async function workers(p: Parsed): Promise<number> {
  const list = await new MasterClient(masterUrl(p), token()).workers()
  if (bool(p, 'json')) { console.log(JSON.stringify(list, null, 2)); return 0 }
  const now = Date.now()
  for (const w of list) {
    console.log(`${w.worker_id.padEnd(20)} ${w.address.padEnd(22)} ${w.status.padEnd(6)} tasks ${w.active_tasks}/${w.slots}  mem ${w.mem_usage_mb} MiB  seen ${((now - w.last_heartbeat) / 1000).toFixed(1)}s ago`)
  }
  return 0
}

async function local(p: Parsed): Promise<number> {
  const job = readJob(p)
  const hbTimeout = opt(p, 'heartbeat-timeout')
  const { status: s, result, url } = await runLocal(job, {
    workers: parseInteger('workers', str(p, 'workers', '2'), 1, 64),
    slots: parseInteger('slots', str(p, 'slots', String(Math.max(1, Math.floor(availableParallelism() / 2)))), 1, 1024),
    maxMem: str(p, 'max-mem', '1GiB'), dataDir: str(p, 'data-dir', '.'), keep: bool(p, 'keep'), json: bool(p, 'json'),
    ...(hbTimeout ? { heartbeatTimeout: hbTimeout } : {}),
  })
  if (bool(p, 'keep')) console.error(`the cluster is still up: ${url}`)
  if (result !== null) console.log(bool(p, 'json') ? JSON.stringify(result) : renderResult(result))
  return finish(s)
}

try {
  const code = await main(process.argv.slice(2))
  if (code !== 0 || !['master', 'worker'].includes(process.argv[2] ?? '')) process.exit(code)
  process.exit(0)
} catch (e) {
  if (e instanceof UsageError) { console.error(`minispark: ${e.message}`); process.exit(2) }
  if (e instanceof ClientError) {
    console.error(`minispark: ${e.message}`)
    process.exit(e.code === 'UNREACHABLE' ? 3 : e.status >= 400 && e.status < 500 ? 2 : 1)
  }
  console.error(`minispark: ${(e as Error).stack ?? String(e)}`)
  process.exit(1)
}
