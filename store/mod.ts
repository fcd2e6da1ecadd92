export { type CheckpointPolicy, EventStore, type EventStoreOptions } from "./event_store.ts";
export {
  CorruptEventError,
  ExpectedVersionConflictError,
  ProjectionKeyConflictError,
  StoreUnavailableError,
  StreamClosedError,
} from "./errors.ts";
export { latestSchemaVersion, migrate, schemaVersion } from "./migrations/mod.ts";
export type { QuarantinedStream } from "./quarantine.ts";
export type * from "./types.ts";
