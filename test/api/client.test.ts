// The typed client gives up on a master that does not answer: every request has a deadline.
import { afterAll, expect, test } from 'bun:test'
import { createServer, type Server, type Socket } from 'node:net'
import { ClientError, MasterClient } from '../../src/api/client'

const sockets: Socket[] = []
const servers: Server[] = []
afterAll(() => { for (const s of sockets) s.destroy(); for (const s of servers) s.close() })

/** A TCP server that accepts connections and answers as `answer` says (or never). */
async function listen(answer: (s: Socket) => void): Promise<string> {
  const server = createServer(s => { sockets.push(s); answer(s) })
  servers.push(server)
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no port')
  return `http://127.0.0.1:${addr.port}`
}

test('a master that accepts and never answers is a TIMEOUT, not a hang', async () => {
  const url = await listen(() => {})
  const client = new MasterClient(url, undefined, 300)
  const t0 = performance.now()
  const err = await client.workers().catch(e => e)
  expect(err).toBeInstanceOf(ClientError)
  expect((err as ClientError).code).toBe('TIMEOUT')
  expect((err as ClientError).message).toContain('did not answer within 300 ms')
  expect(performance.now() - t0).toBeLessThan(10_000)
})

test('a master that stalls in the middle of its answer is a TIMEOUT too', async () => {
  const url = await listen(s => s.once('data', () =>
    s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[')))
  const err = await new MasterClient(url, undefined, 300).workers().catch(e => e)
  expect((err as ClientError).code).toBe('TIMEOUT')
})

test('nothing listening is UNREACHABLE', async () => {
  const url = await listen(() => {})
  servers.pop()!.close()
  await Bun.sleep(50)
  const err = await new MasterClient(url, undefined, 2_000).workers().catch(e => e)
  expect((err as ClientError).code).toBe('UNREACHABLE')
})
