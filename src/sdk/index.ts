// The TypeScript SDK: `import { connect, local } from 'minispark'`. Wiring and re-exports only.
export { connect, local, Session, JobFailedError, type SessionOptions, type LocalOptions, type CsvOptions, type CsvType, type CsvRow } from './session'
export { FunctionSourceError, type Helpers } from './functions'
export { PlanError } from './plan'
export type {
  Dataset, KeyedDataset, DatasetOf, Key, Params, ActionOptions, WriteOptions, Written, WideOptions, SortOptions, JoinHow, SinkSpec,
  StepOptions, AsJson, StorageLevel, PersistOptions,
} from './types'
export type { DatasetInfo } from '../api/datasets'
export type { JobRequest, JobStatus, JobResult, JobError } from '../api/jobs'
export { ClientError } from '../api/client'
