// The main thread's side of the file thread (files/entry.ts): each call is a message, answered
// when the work is done; calls run one after another, in order. A file thread that dies fails the
// calls it held and is replaced.
import type { FinalizeRequest, ListRequest } from '../../../api/tasks'
import type { Reserved } from '../listing'
import { threadEntry } from '../threads'

export type FileRequest = (
  | { op: 'list'; dataDir: string; req: ListRequest }
  | { op: 'clear'; dataDir: string; paths: string[]; olderThanMs?: number | undefined }
  | { op: 'drop-outputs'; dataDir: string; paths: string[]; keep: boolean }
  | { op: 'remove'; path: string }
  | { op: 'finalize'; dataDir: string; jobId: string; paths: string[]; swaps: NonNullable<FinalizeRequest['swaps']>; settle: NonNullable<FinalizeRequest['settle']> }
) & { own: readonly Reserved[] }

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

type Pending = { resolve(v: unknown): void; reject(e: Error): void }

export class FileWork {
  private thread: Worker
  private readonly pending = new Map<number, Pending>()
  private next = 1
  private stopped = false

  /** `own`: paths no job may touch, judged by their real paths (the work dir) */
  constructor(private readonly own: readonly Reserved[] = []) { this.thread = this.start() }

  /** The answer as JSON text (a ListAnswer). */
  listJson(dataDir: string, req: ListRequest): Promise<string> { return this.call({ op: 'list', dataDir, req }) as Promise<string> }
  clear(dataDir: string, paths: string[], olderThanMs?: number): Promise<void> { return this.call({ op: 'clear', dataDir, paths, olderThanMs }) as Promise<void> }
  dropOutputs(dataDir: string, paths: string[], keep: boolean): Promise<void> { return this.call({ op: 'drop-outputs', dataDir, paths, keep }) as Promise<void> }
  remove(path: string): Promise<void> { return this.call({ op: 'remove', path }) as Promise<void> }
  finalize(dataDir: string, jobId: string, paths: string[], swaps: NonNullable<FinalizeRequest['swaps']>, settle: NonNullable<FinalizeRequest['settle']> = []): Promise<void> {
    return this.call({ op: 'finalize', dataDir, jobId, paths, swaps, settle }) as Promise<void>
  }

  stop(): void { this.stopped = true; this.thread.terminate() }

  private call(r: DistributiveOmit<FileRequest, 'own'>): Promise<unknown> {
    if (this.stopped) return Promise.reject(new Error('the worker is stopping'))
    const id = this.next++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.thread.postMessage({ id, r: { ...r, own: this.own } })
    })
  }

  private start(): Worker {
    const thread = new Worker(threadEntry('files/entry.ts'))
    thread.onmessage = (e: MessageEvent<{ id: number; ok: boolean; value?: unknown; message?: string; code?: string }>) => {
      const p = this.pending.get(e.data.id)
      if (p === undefined) return
      this.pending.delete(e.data.id)
      if (e.data.ok) p.resolve(e.data.value)
      else p.reject(Object.assign(new Error(e.data.message), { code: e.data.code }))
    }
    const died = (why: string): void => {
      if (this.thread !== thread) return
      for (const p of this.pending.values()) p.reject(new Error(`the file thread ${why}`))
      this.pending.clear()
      if (!this.stopped) this.thread = this.start()
    }
    thread.onerror = e => { thread.terminate(); died(`crashed: ${e.message}`) }
    thread.addEventListener('close', () => died('ended'))
    return thread
  }
}
