// Usage text of every subcommand.
export const HELP: Record<string, string> = {
  main: `minispark: a distributed batch-processing engine

usage: minispark <command> [flags]

commands:
  master    run the master (job API, scheduler, state in SQLite)
  worker    run a worker (task threads, shuffle service)
  submit    submit a job file to a master
  status    show a job, or list jobs
  cancel    cancel a job
  workers   list the workers of a master
  local     run a job on an embedded local cluster

  minispark <command> --help   for its flags
  minispark --version`,
  master: `usage: minispark master [--host 127.0.0.1] [--port 8080] [--state-db minispark-master.db]
                        [--heartbeat-timeout 10s] [--keep-jobs 7d,10000] [--token-file FILE] [--insecure]
  --port 0 takes a free port. Prints "minispark master listening on URL" when ready.
  --keep-jobs: how long ended jobs (status, result, task attempts) stay in the state file: an age
  (7d, 36h), a count of the newest (500), both (7d,10000: the default, whichever is hit first), or
  "all". Checked at start and every minute; unfinished jobs are always kept.`,
  worker: `usage: minispark worker --master http://HOST:PORT [--host 127.0.0.1] [--port 8081]
                        [--advertise HOST:PORT] [--id NAME] [--slots N] [--max-mem 1GiB]
                        [--data-dir .] [--work-dir $TMPDIR/minispark-work-$USER] [--heartbeat-interval 3s]
                        [--token-file FILE] [--insecure]
  --slots defaults to the number of CPU cores. No job may read or write the work dir (nor the
  master's --state-db): keep the work dir out of --data-dir, as the default is.`,
  submit: `usage: minispark submit JOB.json [--master URL] [--follow] [--json]
  Prints the job id; --follow shows progress until the job ends (exit 1 if it fails).`,
  status: `usage: minispark status [JOB_ID] [--master URL] [--json]`,
  cancel: `usage: minispark cancel JOB_ID [--master URL]`,
  workers: `usage: minispark workers [--master URL] [--json]`,
  local: `usage: minispark local JOB.json [--workers 2] [--slots N] [--max-mem 1GiB] [--data-dir .] [--keep] [--json]
  Starts a master and N workers on loopback with a random token of their own, runs the job, prints
  its result and stops them. --keep keeps them up (and this command in the foreground) until Ctrl-C
  or SIGTERM; the token is in the file it names. The cluster never outlives this command.`,
}
