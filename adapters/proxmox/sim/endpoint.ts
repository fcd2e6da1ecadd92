/** The shape of one simulated API operation and what its handler gets. */
import type { Logger } from "../../../lib/log.ts";
import type { Access, Caller } from "./access.ts";
import type { CtStore } from "./ct_store.ts";
import type { CtDriver } from "./driver.ts";
import type { AppliedFaults, FaultInjector } from "./faults.ts";
import type { ParamValue } from "./schema/validate.ts";
import type { ParamTable } from "./schema/types.ts";
import type { SimStorage } from "./storage.ts";
import type { TaskManager } from "./tasks.ts";
import type { SpooledFile } from "./multipart.ts";
import type { OciPuller } from "./oci_puller.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/** An uploaded file, spooled to disk as pveproxy spools it; the handler moves it away. */
export type UploadedFile = Omit<SpooledFile, "field">;

export interface ApiRequest {
  /** Validated parameters, path parameters included. */
  params: Record<string, ParamValue>;
  /** Undefined only on public endpoints. */
  caller: Caller | undefined;
  faults: AppliedFaults;
  file?: UploadedFile;
}

export interface Endpoint {
  method: HttpMethod;
  /** e.g. `/nodes/{node}/lxc/{vmid}/status/start`. */
  path: string;
  params: ParamTable;
  /** `allowtoken: 0` endpoints answer 403 to API tokens. */
  allowToken?: false;
  /** Reachable without authentication. */
  public?: true;
  /** Takes a multipart/form-data body with one file. */
  upload?: true;
  /** Returns what goes into `{"data": …}`. */
  handle(request: ApiRequest): unknown;
}

/** The simulated node's parts, as its endpoints see them. */
export interface SimNode {
  name: string;
  cts: CtStore;
  tasks: TaskManager;
  storage: SimStorage;
  driver: CtDriver;
  access: Access;
  faults: FaultInjector;
  puller: OciPuller;
  logger: Logger;
  now(): number;
}

/** A result with fields beside `data` in the envelope (e.g. the task log's `total`). */
export class Envelope {
  constructor(readonly data: unknown, readonly extra: Readonly<Record<string, unknown>>) {}
}
