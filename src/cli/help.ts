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

  minispark <command> --help   for its flags
  minispark --version`,
  master: `usage: minispark master [--host 127.0.0.1] [--port 8080] [--state-db minispark-master.db]
                        [--heartbeat-timeout 10s] [--token-file FILE] [--insecure]
  --port 0 takes a free port. Prints "minispark master listening on URL" when ready.`,
  worker: `usage: minispark worker --master http://HOST:PORT [--host 127.0.0.1] [--port 8081]
                        [--advertise HOST:PORT] [--id NAME] [--slots N] [--max-mem 1GiB]
                        [--data-dir .] [--work-dir ./minispark-work] [--heartbeat-interval 3s]
                        [--token-file FILE] [--insecure]
  --slots defaults to the number of CPU cores.`,
  submit: `usage: minispark submit JOB.json [--master URL] [--follow] [--cancel-on-interrupt] [--json]
  Prints the job id and (on stderr) its page in the web UI. --follow shows progress until the job
  ends, then its result; exit 0 if it succeeded, 1 if it failed or was cancelled. Ctrl-C stops
  following and leaves the job running (--cancel-on-interrupt cancels it). With --json, stdout is
  one JSON value: {job_id, ui}, or with --follow {job_id, state, error, result}.`,
  wait: `usage: minispark wait JOB_ID [--master URL] [--cancel-on-interrupt] [--json]
  Shows progress until the job ends, then its result, as submit --follow does.`,
  result: `usage: minispark result JOB_ID [--master URL] [--json]
  Prints the result of a finished job: count sinks as NODE: N, collect sinks one JSON value a line,
  write sinks as NODE: wrote N records to PATH. Exit 1 if the job failed, was cancelled or is not
  finished yet.`,
  status: `usage: minispark status [JOB_ID] [--master URL] [--json]`,
  cancel: `usage: minispark cancel JOB_ID [--master URL]`,
  workers: `usage: minispark workers [--master URL] [--json]`,
  local: `usage: minispark local JOB.json [--workers 2] [--slots N] [--max-mem 1GiB] [--data-dir .] [--keep] [--json]
  Starts a master and N workers on loopback, runs the job with progress and a link to its page in
  the web UI, prints its result and stops them (--keep leaves them up).`,
}
