// W3 as a user would write it without an engine, one thread: customers in a Map, orders in a loop,
// a total in integer cents per country. `bun w3-idiomatic.ts CUSTOMERS ORDERS PART PARTS` reads the
// PART-th of PARTS byte ranges of ORDERS (cut at line ends) and prints {country: cents} as JSON.
import { readFileSync } from 'node:fs'

const [customersPath, ordersPath, partArg, partsArg] = process.argv.slice(2)
const part = Number(partArg), parts = Number(partsArg)

const countryOf = new Map<string, string>()
for (const line of readFileSync(customersPath!, 'utf8').split('\n').slice(1)) {
  if (line === '') continue
  const [id, , country] = line.split(',')
  countryOf.set(id!, country!)
}

const bytes = readFileSync(ordersPath!)
// This part's lines: those that start in [start, end), the header (line 0) left out.
const lineStart = (at: number): number => at === 0 ? bytes.indexOf(10) + 1 : at >= bytes.length ? bytes.length : bytes.indexOf(10, at - 1) + 1 || bytes.length
const start = lineStart(Math.floor(bytes.length * part / parts))
const end = lineStart(Math.floor(bytes.length * (part + 1) / parts))
const totals = new Map<string, number>()
for (const line of bytes.subarray(start, end).toString('latin1').split('\n')) {
  if (line === '') continue
  const [, customerId, amount] = line.split(',')
  const country = countryOf.get(customerId!)
  if (country === undefined) continue
  totals.set(country, (totals.get(country) ?? 0) + Math.round(Number(amount) * 100))
}
console.log(JSON.stringify(Object.fromEntries(totals)))
