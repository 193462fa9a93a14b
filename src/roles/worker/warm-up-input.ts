// The input of a task thread's warm-up (task/warm-up.ts): a small file each warm-up writes in its
// lane's folder of the work dir and removes with it (and the worker removes after a thread that
// was stopped before it could).

export const WARM_UP_FILE = 'lines.txt'
/** A few short lines: enough for every step of a read (cut, decode, push), small enough to cost
 *  nothing to read. */
export const WARM_UP_TEXT = 'warm up\nthe\ntask thread\n'

/** Not a valid job id (ids are [A-Za-z0-9_-]), so no job's folder or attempt can be a warm-up's. */
export const warmUpJob = (lane: number): string => `.warm-up-${lane}`
