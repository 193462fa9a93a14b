// A client run on the master's host for what the CLI does not give: a job's task attempts, its
// result, and a watch of the worker registry. With MINISPARK_MASTER and MINISPARK_TOKEN set:
//   bun api.ts tasks JOB_ID | result JOB_ID | outputs PATH   prints the answer as JSON
//   bun api.ts watch-workers                  prints, every 100 ms until killed, one line
//       {"sent": ms, "received": ms, "workers": [...]} (or "error" instead of "workers")
// Answers are checked against the API's schemas by MasterClient. The watch is one long-lived
// process, so the times it prints bracket each answer closely (a CLI run costs a process start).
import { MasterClient } from '../../src/api/client'

const [what, id] = process.argv.slice(2)
const master = process.env.MINISPARK_MASTER
const usage = 'usage: MINISPARK_MASTER=URL MINISPARK_TOKEN=T bun api.ts tasks JOB_ID | result JOB_ID | outputs PATH | watch-workers'
if (master === undefined) { console.error(usage); process.exit(2) }
const client = new MasterClient(master, process.env.MINISPARK_TOKEN)

if (what === 'watch-workers') {
  console.log('watching')
  for (;;) {
    const sent = Date.now()
    try {
      const workers = await client.workers()
      console.log(JSON.stringify({ sent, received: Date.now(), workers }))
    } catch (e) {
      console.log(JSON.stringify({ sent, received: Date.now(), error: (e as Error).message }))
    }
    await Bun.sleep(100)
  }
} else if (what === 'outputs' && id !== undefined) {
  const res = await fetch(`${master}/outputs?path=${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${process.env.MINISPARK_TOKEN}` } })
  console.log(await res.text())
  if (!res.ok) process.exit(1)
} else if ((what === 'tasks' || what === 'result') && id !== undefined) {
  console.log(JSON.stringify(what === 'tasks' ? await client.tasks(id) : await client.result(id)))
} else {
  console.error(usage)
  process.exit(2)
}
