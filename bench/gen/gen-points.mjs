// gen-points.mjs — points in clusters, for k-means (examples/kmeans.ts).
// Usage: node gen-points.mjs --out DIR --points N [--k 8] [--dims 2] [--files 4] [--seed 42] [--spread 10]
// Writes DIR/part-00000.txt … : N lines of DIMS space-separated numbers (4 decimals). The K
// centres are uniform in [-100, 100]^DIMS; each point is a centre chosen uniformly plus Gaussian
// noise of standard deviation SPREAD per coordinate. Deterministic: same arguments => byte-identical files.
import { parseArgs, Rng, Writer, ensureDir, pad } from './_lib.mjs';
import path from 'node:path';

const usage = 'usage: node gen-points.mjs --out DIR --points N [--k K] [--dims D] [--files F] [--seed S] [--spread SD]\n';
const o = parseArgs(process.argv.slice(2), { out: null, points: null, k: 8, dims: 2, files: 4, seed: 42, spread: 10 }, usage);
const N = Math.floor(o.points), K = Math.max(1, Math.floor(o.k)), D = Math.max(1, Math.floor(o.dims)), F = Math.max(1, Math.floor(o.files));
ensureDir(o.out);

const cRng = new Rng(o.seed, 3);
const centres = Array.from({ length: K }, () => Array.from({ length: D }, () => cRng.float() * 200 - 100));
let bytes = 0;
for (let f = 0; f < F; f++) {
  const rng = new Rng(o.seed, 100 + f);
  // Box-Muller: a standard normal from two uniforms (1 - u keeps the log finite)
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.float())) * Math.cos(2 * Math.PI * rng.float());
  const lo = Math.floor((N * f) / F), hi = Math.floor((N * (f + 1)) / F);
  const w = new Writer(path.join(o.out, `part-${pad(f, 5)}.txt`));
  for (let i = lo; i < hi; i++) {
    const c = centres[rng.below(K)];
    w.ascii(c.map(x => (x + o.spread * normal()).toFixed(4)).join(' ') + '\n');
  }
  w.close();
  bytes += w.total;
}
process.stderr.write(`gen-points: ${N} points, ${K} clusters, ${D} dims, ${F} files, ${bytes} bytes -> ${o.out}\n`);
