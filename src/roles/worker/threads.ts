// Where the worker's thread entries are: beside this file from source; inside the compiled binary,
// build.ts embeds them under the entrypoints' common root (src/), so their paths are fixed there.
export function threadEntry(relative: string): string {
  return import.meta.path.startsWith('/$bunfs/')
    ? `/$bunfs/root/roles/worker/${relative}`
    : new URL(`./${relative}`, import.meta.url).href
}
