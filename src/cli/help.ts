// Usage text of every subcommand.
export const HELP: Record<string, string> = {
  main: `minispark: a distributed batch-processing engine

usage: minispark <command> [flags]

commands:
  master    run the master (job API, scheduler, state in SQLite)
  worker    run a worker (task threads, shuffle service)
  submit    submit a job file to a master
  wait      follow a job until it ends, then print its result
  result    print the result of a finished job
  status    show a job, or list jobs
  cancel    cancel a job
  workers   list the workers of a master
  local     run a job on an embedded local cluster

  minispark <command> -h, --help   for its flags (or minispark help <command>)
  minispark -v, --version

Client commands (submit, wait, result, status, cancel, workers) take --master HOST:PORT (or a URL;
default MINISPARK_MASTER, else 127.0.0.1:8080) and --token-file FILE (default MINISPARK_TOKEN).
A job file may be - to read it from stdin. Sizes take 512m, 1g (binary, as Spark reads them),
512MiB, 1GiB, 512MB or 1GB; durations 500ms, 3s or 2m.
Exit codes: 0 success, 1 the job failed or was cancelled, 2 usage error, 3 master unreachable,
130 interrupted.`,
  master: `usage: minispark master [--host 127.0.0.1] [--port 8080] [--state-db minispark-master.db]
                        [--heartbeat-timeout 10s] [--keep-jobs 7d,10000] [--token-file FILE] [--insecure]
                        [--log-level info]
  --port 0 takes a free port. Prints "minispark master listening on URL" when ready.
  --log-level: debug, info (the default: jobs submitted, started and ended, workers registered, DEAD
  and back, recovery after a restart), warn (task retries, user functions that threw), error or
  silent. Lines go to stderr: JSON, one a line, or readable text on a terminal.
  --keep-jobs: how long ended jobs (status, result, task attempts) stay in the state file: an age
  (7d, 36h), a count of the newest (500), both (7d,10000: the default, whichever is hit first), or
  "all". Checked at start and every minute; unfinished jobs are always kept.`,
  worker: `usage: minispark worker --master HOST:PORT [--host 127.0.0.1] [--port 8081]
                        [--advertise HOST:PORT] [--id NAME] [--slots N] [--max-mem 1GiB]
                        [--data-dir .] [--work-dir $TMPDIR/minispark-work-$USER] [--heartbeat-interval 3s]
                        [--token-file FILE] [--insecure] [--log-level info]
  --slots defaults to the number of CPU cores. --log-level as for the master (stderr, JSON lines
  unless a terminal). No job may read or write the work dir (nor the
  master's --state-db): keep the work dir out of --data-dir, as the default is.`,
  submit: `usage: minispark submit JOB.json|- [--master HOST:PORT] [--token-file FILE] [--follow] [--cancel-on-interrupt] [--json]
  Prints the job id and (on stderr) its page in the web UI. --follow shows progress until the job
  ends, then its result; exit 0 if it succeeded, 1 if it failed or was cancelled. Ctrl-C stops
  following and leaves the job running (--cancel-on-interrupt cancels it). With --json, stdout is
  one JSON value: {job_id, ui}, or with --follow {job_id, state, error, result}.`,
  wait: `usage: minispark wait JOB_ID [--master HOST:PORT] [--token-file FILE] [--cancel-on-interrupt] [--json]
  Shows progress until the job ends, then its result, as submit --follow does.`,
  result: `usage: minispark result JOB_ID [--master HOST:PORT] [--token-file FILE] [--json]
  Prints the result of a finished job: count sinks as NODE: N, collect sinks one JSON value a line,
  write sinks as NODE: wrote N records to PATH. Exit 1 if the job failed, was cancelled or is not
  finished yet.`,
  status: `usage: minispark status [JOB_ID] [--master HOST:PORT] [--token-file FILE] [--json]`,
  cancel: `usage: minispark cancel JOB_ID [--master HOST:PORT] [--token-file FILE]`,
  workers: `usage: minispark workers [--master HOST:PORT] [--token-file FILE] [--json]`,
  local: `usage: minispark local JOB.json|- [--workers 2] [--slots N] [--max-mem 1GiB] [--data-dir .] [--keep] [--json]
                       [--log-level warn]
  Starts a master and N workers on loopback, runs the job with progress and a link to its page in
  the web UI, prints its result and stops them (--keep leaves them up). The roles' log lines go to
  stderr, from warn up by default (--log-level info shows jobs and workers too).`,
}
