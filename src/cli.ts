#!/usr/bin/env bun
// The one entry of the binary: parses flags and starts one role or one client command.
// Exit codes: 0 success, 1 the job failed or was cancelled, 2 usage error, 3 master unreachable.
import { availableParallelism, tmpdir, totalmem, userInfo } from 'node:os'
import { lstatSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import { ClientError, MasterClient } from './api/client'
import type { JobRequest } from './api/jobs'
import { finish, follow, jobUiUrl, showResult, submitJob } from './cli/jobs'
import { HELP } from './cli/help'
import { opsOf, progressPrinter } from './cli/progress'
import { UsageError, bool, opt, parseDurationMs, parseFlags, parseInteger, parseKeepJobs, parseLogLevel, parseMasterUrl, parseSizeBytes, str, type FlagSpec, type Parsed } from './cli/flags'
import { createLogger } from './roles/log'
import { table } from './cli/table'
import { nearest } from './api/nearest'
import { VERSION } from './roles/http'
import { startMaster } from './roles/master/index'
import { DEFAULT_KEEP_JOBS } from './roles/master/retention'
import { startWorker } from './roles/worker/index'
import { renderResult, runLocal } from './roles/local'
import { EXIT_WITH_STDIN_ENV, LOCAL_DIR_ENV, selfCommand, stdinClosed } from './roles/spawn'
import { floorWarning, jscRamBytes } from './roles/memory-floor'

const COMMON: FlagSpec = { help: 'boolean', version: 'boolean' }
const CLIENT: FlagSpec = { ...COMMON, master: 'string', 'token-file': 'string', json: 'boolean' }
const SPECS: Record<string, FlagSpec> = {
  master: { ...COMMON, host: 'string', port: 'string', 'state-db': 'string', 'heartbeat-timeout': 'string', 'token-file': 'string', insecure: 'boolean', 'keep-jobs': 'string', 'log-level': 'string' },
  worker: { ...COMMON, master: 'string', host: 'string', port: 'string', advertise: 'string', id: 'string', slots: 'string', 'max-mem': 'string',
    'data-dir': 'string', 'work-dir': 'string', 'heartbeat-interval': 'string', 'token-file': 'string', insecure: 'boolean', 'log-level': 'string' },
  submit: { ...CLIENT, follow: 'boolean', 'cancel-on-interrupt': 'boolean' },
  wait: { ...CLIENT, 'cancel-on-interrupt': 'boolean' },
  result: CLIENT,
  status: CLIENT, cancel: CLIENT, workers: CLIENT,
  local: { ...COMMON, workers: 'string', slots: 'string', 'max-mem': 'string', 'data-dir': 'string', keep: 'boolean', json: 'boolean', 'heartbeat-timeout': 'string', 'log-level': 'string' },
}

const masterUrl = (p: Parsed): string => {
  const flag = opt(p, 'master')
  return parseMasterUrl(flag === undefined ? 'master (MINISPARK_MASTER)' : 'master', flag ?? process.env.MINISPARK_MASTER ?? 'http://127.0.0.1:8080')
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined) { console.error(HELP.main); return 2 }
  if (command === '--help' || command === '-h') { console.log(HELP.main); return 0 }
  if (command === 'help') { console.log(HELP[rest[0] ?? 'main'] ?? HELP.main); return 0 }
  if (command === '--version' || command === '-v' || command === 'version') { console.log(`minispark ${VERSION}`); return 0 }
  const spec = SPECS[command]
  if (spec === undefined) {
    const near = nearest(command.replace(/^-+/, ''), Object.keys(SPECS))
    throw new UsageError(`unknown ${command.startsWith('-') ? 'flag' : 'command'} "${command}"${near === null ? '' : `: did you mean "${near}"?`} (see minispark --help)`)
  }
  const p = parseFlags(rest, spec, command)
  if (bool(p, 'help')) { console.log(HELP[command]); return 0 }
  if (bool(p, 'version')) { console.log(`minispark ${VERSION}`); return 0 }
  switch (command) {
    case 'master': return runMaster(p)
    case 'worker': return runWorker(p)
    case 'submit': return submit(p)
    case 'wait': return wait(p)
    case 'result': return result(p)
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
  const logger = createLogger({ role: 'master', level: parseLogLevel('log-level', str(p, 'log-level', 'info')) })
  const m = startMaster({
    logger,
    host, port: parseInteger('port', str(p, 'port', '8080'), 0, 65535), stateDb: str(p, 'state-db', 'minispark-master.db'),
    heartbeatTimeoutMs: parseDurationMs('heartbeat-timeout', str(p, 'heartbeat-timeout', '10s')),
    retention: parseKeepJobs('keep-jobs', str(p, 'keep-jobs', DEFAULT_KEEP_JOBS)),
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
  if (opt(p, 'master') === undefined && process.env.MINISPARK_MASTER === undefined) throw new UsageError('worker needs --master HOST:PORT (or MINISPARK_MASTER)')
  const master = masterUrl(p)
  const logger = createLogger({ role: 'worker', level: parseLogLevel('log-level', str(p, 'log-level', 'info')) })
  const id = opt(p, 'id')
  const advertise = opt(p, 'advertise')
  let refuse: (message: string) => void = () => {}
  const refused = new Promise<string>(resolve => { refuse = resolve })
  const slots = parseInteger('slots', str(p, 'slots', String(availableParallelism())), 1, 1024)
  const floor = floorWarning(maxMemBytes, slots)
  if (floor !== null) logger.warn({ event: 'max-mem-below-floor', max_mem_bytes: maxMemBytes, slots }, floor)
  const w = await startWorker({
    masterUrl: master, host, port: parseInteger('port', str(p, 'port', '8081'), 0, 65535),
    ...(advertise === undefined ? {} : { advertise }), ...(id === undefined ? {} : { id }),
    slots,
    maxMemBytes,
    dataDir: str(p, 'data-dir', '.'), workDir: opt(p, 'work-dir') ?? defaultWorkDir(),
    heartbeatIntervalMs: parseDurationMs('heartbeat-interval', str(p, 'heartbeat-interval', '3s')),
    ...withToken(readToken(p)),
    logger,
    // A wrong token is a setting to fix, not an outage to wait out: say so and exit 2.
    onRefused: message => refuse(message),
  })
  console.log(`minispark worker listening on ${w.url}`)
  return untilSignal(() => w.stop(), refused)
}

/**
 * The default work dir lies outside any data dir (a job must never reach shuffle blocks): under
 * the OS temp dir, one per user. Its name is predictable in a shared /tmp, so it must be a real
 * folder of this user's, closed to others; anything else (a link planted by another user) is
 * refused rather than written through.
 */
function defaultWorkDir(): string {
  let user: string
  try { user = userInfo().username } catch { user = String(process.getuid?.() ?? 'user') }
  const dir = join(tmpdir(), `minispark-work-${user.replace(/[^A-Za-z0-9._-]/g, '_')}`)
  try { mkdirSync(dir, { mode: 0o700 }) } catch (e) { if ((e as { code?: string }).code !== 'EEXIST') throw e }
  const st = lstatSync(dir)
  const uid = process.getuid?.()
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new UsageError(`the default work dir ${dir} is not a folder of this user's closed to others (a link, or someone else's): remove it, or give --work-dir`)
  }
  return dir
}

/**
 * JavaScriptCore sizes its heaps from the machine's memory: on a large machine it lets garbage
 * pile up far past a small --max-mem before collecting. Its options are read once, at process
 * start, from the environment; so a worker re-executes itself (same pid, same arguments) with the
 * machine's memory stated as a few times its budget (jscRamBytes), unless the variable is set already.
 */
function sizeHeapsToBudget(maxMemBytes: number): void {
  if (process.env.BUN_JSC_forceRAMSize !== undefined) return
  const ram = jscRamBytes(maxMemBytes, totalmem())
  if (ram === null || typeof process.execve !== 'function') return
  process.execve(process.execPath, selfCommand(process.argv.slice(2)), { ...process.env, BUN_JSC_forceRAMSize: String(ram) })
}

/** Runs until SIGTERM or SIGINT, then stops cleanly (exit 0); or, if `fatal` gives a reason first,
 *  stops and exits 2 with it. A role started by `local` also stops when its parent is gone (its
 *  stdin pipe closed), bounded, and the master then removes the parent's temp dir, which nobody
 *  else is left to remove. */
function untilSignal(stop: () => Promise<void>, fatal?: Promise<string>): Promise<number> {
  return new Promise(resolve => {
    let stopping = false
    const onSignal = (): void => {
      if (stopping) return
      stopping = true
      void stop().finally(() => resolve(0))
    }
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
    void fatal?.then(reason => {
      if (stopping) return
      stopping = true
      console.error(`minispark: ${reason}`)
      void stop().finally(() => resolve(2))
    })
    if (process.env[EXIT_WITH_STDIN_ENV] !== '1') return
    void stdinClosed().then(async () => {
      if (stopping) return
      stopping = true
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([stop().catch(() => {}), new Promise(res => { timer = setTimeout(res, 5000) })])
      clearTimeout(timer)
      const dir = process.env[LOCAL_DIR_ENV]
      if (dir !== undefined && basename(dir).startsWith('minispark-local-')) rmSync(dir, { recursive: true, force: true })
      resolve(0)
    })
  })
}

function readJob(p: Parsed, command: string): JobRequest {
  const file = p.positionals[0]
  if (file === undefined) throw new UsageError(`give the job file (or - for stdin): minispark ${command} JOB.json`)
  if (p.positionals.length > 1) throw new UsageError(`one job file at a time: got ${p.positionals.join(' ')} (see minispark ${command} --help)`)
  const from = file === '-' ? 'stdin' : `job file ${file}`
  let text: string
  try { text = readFileSync(file === '-' ? 0 : file, 'utf8') } catch (e) { throw new UsageError(`cannot read ${from}: ${(e as Error).message}`) }
  try { return JSON.parse(text) as JobRequest } catch (e) { throw new UsageError(`${from} is not valid JSON: ${(e as Error).message}`) }
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

const followOptions = (p: Parsed) => ({
  json: bool(p, 'json'), cancelOnInterrupt: bool(p, 'cancel-on-interrupt'),
  masterHint: opt(p, 'master') === undefined ? '' : ` --master ${masterUrl(p)}`,
})

const submit = (p: Parsed): Promise<number> =>
  submitJob(new MasterClient(masterUrl(p), readToken(p)), readJob(p, 'submit'), { ...followOptions(p), follow: bool(p, 'follow') })

const jobIdOf = (p: Parsed, command: string): string => {
  const id = p.positionals[0]
  if (id === undefined) throw new UsageError(`give the job id: minispark ${command} JOB_ID`)
  return id
}

const wait = (p: Parsed): Promise<number> => follow(new MasterClient(masterUrl(p), readToken(p)), jobIdOf(p, 'wait'), followOptions(p))
const result = (p: Parsed): Promise<number> => showResult(new MasterClient(masterUrl(p), readToken(p)), jobIdOf(p, 'result'), bool(p, 'json'))

async function status(p: Parsed): Promise<number> {
  const client = new MasterClient(masterUrl(p), readToken(p))
  const id = p.positionals[0]
  if (id !== undefined) {
    const s = await client.status(id)
    if (bool(p, 'json')) console.log(JSON.stringify(s, null, 2))
    else {
      console.log(`${s.job_id} ${s.name} ${s.state} ${(s.progress * 100).toFixed(0)}%  ${jobUiUrl(client, s.job_id)}`)
      if (s.error) console.log(`error: ${s.error.message}${s.error.node_id ? ` (node ${s.error.node_id})` : ''}`)
      console.log(table(['STAGE', 'STATE', 'TASKS', 'NODES'],
        s.stages.map(st => [String(st.stage_id), st.state, `${st.tasks.succeeded}/${st.tasks.total}`, st.node_ids.join(' → ')])))
    }
    return 0
  }
  const jobs = await client.jobs()
  if (bool(p, 'json')) console.log(JSON.stringify(jobs, null, 2))
  else console.log(table(['JOB_ID', 'STATE', 'PROGRESS', 'SUBMITTED', 'NAME'],
    jobs.map(j => [j.job_id, j.state, `${(j.progress * 100).toFixed(0)}%`, j.submitted_at, j.name])))
  return 0
}

async function cancel(p: Parsed): Promise<number> {
  const id = jobIdOf(p, 'cancel')
  const s = await new MasterClient(masterUrl(p), readToken(p)).cancel(id)
  console.log(`${s.job_id} ${s.state}`)
  return 0
}

async function workers(p: Parsed): Promise<number> {
  const list = await new MasterClient(masterUrl(p), readToken(p)).workers()
  if (bool(p, 'json')) { console.log(JSON.stringify(list, null, 2)); return 0 }
  const now = Date.now()
  console.log(table(['WORKER', 'ADDRESS', 'STATUS', 'TASKS', 'MEMORY', 'LAST SEEN'],
    list.map(w => [w.worker_id, w.address, w.status, `${w.active_tasks}/${w.slots}`, `${w.mem_usage_mb} MiB`, `${((now - w.last_heartbeat) / 1000).toFixed(1)} s ago`])))
  return 0
}

async function local(p: Parsed): Promise<number> {
  const job = readJob(p, 'local')
  const hbTimeout = opt(p, 'heartbeat-timeout')
  // Checked here, so a bad value is a usage error rather than a role that fails to start.
  parseSizeBytes('max-mem', str(p, 'max-mem', '1GiB'))
  if (hbTimeout !== undefined) parseDurationMs('heartbeat-timeout', hbTimeout)
  // The roles' lines share the terminal with the progress bars: only problems, unless asked.
  const logLevel = parseLogLevel('log-level', str(p, 'log-level', 'warn'))
  const json = bool(p, 'json')
  const draw = json && process.stderr.isTTY !== true ? undefined : progressPrinter({ ops: opsOf(job) })
  const { status: s, result, url, kept } = await runLocal(job, {
    workers: parseInteger('workers', str(p, 'workers', '2'), 1, 64),
    slots: parseInteger('slots', str(p, 'slots', String(Math.max(1, Math.floor(availableParallelism() / 2)))), 1, 1024),
    maxMem: str(p, 'max-mem', '1GiB'), dataDir: str(p, 'data-dir', '.'), keep: bool(p, 'keep'), json,
    ...(hbTimeout ? { heartbeatTimeout: hbTimeout } : {}),
    logLevel,
    ...(draw === undefined ? {} : { onStatus: draw }),
    onSubmitted: (id, client) => console.error(`job ${id} running on a local cluster: ${jobUiUrl(client, id)}` +
      (bool(p, 'keep') ? '' : ' (until it ends; --keep leaves the cluster up)')),
  })
  if (kept !== null) {
    console.error(`the cluster is still up: ${url} (its token: MINISPARK_TOKEN=$(cat ${join(kept.dir, 'token')})); Ctrl-C or SIGTERM stops it`)
  }
  if (result !== null) console.log(json ? JSON.stringify(result) : renderResult(result))
  const code = finish(s)
  // --keep: the cluster lives as long as this process, which waits for a signal to stop both.
  if (kept !== null) await new Promise<never>(() => setInterval(() => {}, 2 ** 30))
  return code
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
  // A person gets the reason; the stack is for whoever debugs Mini-Spark itself.
  console.error(`minispark: ${(e as Error).message ?? String(e)}`)
  if (process.env.MINISPARK_DEBUG) console.error((e as Error).stack)
  process.exit(1)
}
