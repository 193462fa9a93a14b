// A client run on the master's host for what the CLI does not print: a job's task attempts and its
// result. `bun api.ts tasks|result JOB_ID` with MINISPARK_MASTER and MINISPARK_TOKEN set; prints
// the answer as JSON (checked against the API's schemas by MasterClient).
import { MasterClient } from '../../src/api/client'

const [what, id] = process.argv.slice(2)
const master = process.env.MINISPARK_MASTER
if (master === undefined || id === undefined || (what !== 'tasks' && what !== 'result')) {
  console.error('usage: MINISPARK_MASTER=URL MINISPARK_TOKEN=T bun api.ts tasks|result JOB_ID')
  process.exit(2)
}
const client = new MasterClient(master, process.env.MINISPARK_TOKEN)
console.log(JSON.stringify(what === 'tasks' ? await client.tasks(id) : await client.result(id)))
