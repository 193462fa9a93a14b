// The roles' log: one line per thing that happened, with its time, level, role and the ids it is
// about (job, stage, task, attempt, worker), and `event`, a stable name to search for. JSON lines
// when stderr is a file or a pipe (a log shipper reads them), coloured text on a terminal. Written
// by the roles' drivers and shells, never by the pure decisions: they return what they decided, and
// the edge says so here.
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino'
import pretty from 'pino-pretty'

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]
export type Logger = PinoLogger

export type LoggerOptions = {
  role: 'master' | 'worker'
  level: LogLevel
  /** where lines go; default stderr */
  destination?: DestinationStream
  /** human-readable lines instead of JSON; default: whether stderr is a terminal */
  pretty?: boolean
}

export function createLogger(o: LoggerOptions): Logger {
  const human = o.pretty ?? (o.destination === undefined && process.stderr.isTTY === true)
  // Synchronous writes: a line written just before a crash (or a SIGKILL) is not lost in a buffer,
  // and a role logs tens of lines a second at most, not per record.
  const destination = human
    ? pretty({ sync: true, destination: o.destination ?? 2, colorize: o.destination === undefined, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,role', messageFormat: '{role}: {msg}', singleLine: true })
    : o.destination ?? pino.destination({ fd: 2, sync: true })
  return pino({
    level: o.level,
    base: { role: o.role, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"warn" rather than pino's numbers: a reader should not need pino's table.
    formatters: { level: label => ({ level: label }) },
  }, destination)
}

/** A logger that writes nothing: for parts built in tests without a role around them. */
export const silentLogger = (): Logger => pino({ level: 'silent' })

/** User text (an error, a record) for a line's message: control characters (a newline could fake
 *  a line on a terminal) become spaces, and it is cut at `max` characters. */
export function oneLine(text: string, max = 300): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ')
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}
