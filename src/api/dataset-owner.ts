// Apart from the catalog's schema (datasets.ts) so that task threads do not load the HTTP framework.

/** The key a dataset's blocks are held under on the workers, instead of their job's id (so that
 *  the job's end does not free them); no job id or dataset name has a "~", and it is one path
 *  component once escaped (worker/layout.ts). */
export const datasetOwner = (job: string, name: string): string => `${job}~${name}`
