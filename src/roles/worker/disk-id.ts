// Which disk a worker's --data-dir is. Workers that share one folder (a shared volume, or several
// workers on one machine) read the same files and see each other's outputs; workers with their own
// disks do not. The master plans by disk: a split runs where its file is, an output part has one
// copy that counts per disk, and _SUCCESS is written once per disk. The id lives in the data dir
// itself, so every worker that mounts the folder finds the same one.
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'

/** Hidden from listings (a name that starts with "."), like every dot-file. */
export const DISK_ID_FILE = '.minispark-disk'

const VALID = /^[0-9a-f]{32}$/

/** The data dir's id, made on first use. Two workers starting at once on a shared folder agree:
 *  the id is written aside and linked into place, which fails for the second, who reads the first's. */
export function diskIdOf(dataDir: string): string {
  const file = join(dataDir, DISK_ID_FILE)
  const existing = readQuiet(file)
  if (existing !== undefined) return existing
  const id = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex')
  const tmp = `${file}.${process.pid}.${id}`
  try {
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(tmp, `${id}\n`)
    linkSync(tmp, file)
    return id
  } catch (e) {
    const other = readQuiet(file)
    if (other !== undefined) return other
    // A data dir this worker cannot write (inputs only): its own disk, named for the machine and
    // folder, so two read-only mounts of one volume on one machine still agree.
    return `ro-${Buffer.from(`${hostname()}:${dataDir}`).toString('hex').slice(0, 48)}`
  } finally {
    rmSync(tmp, { force: true })
  }
}

function readQuiet(file: string): string | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim()
    return VALID.test(text) ? text : undefined
  } catch { return undefined }
}
