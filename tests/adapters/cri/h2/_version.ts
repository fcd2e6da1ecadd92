/**
 * Version over the byte-level client: how the h2 tests show that a connection, or the server,
 * still serves after whatever they did to it.
 */
import assert from "node:assert/strict";
import type { UnaryHandler } from "../../../../adapters/cri/rpc.ts";
import {
  encodeLiteralBlock,
  grpcMessage,
  grpcRequestHeaders,
  grpcStatus,
  H2Client,
  type Response,
} from "../../../_support/h2_client.ts";
import { codec } from "../_harness.ts";

export const Version = codec("Version");

/** A Version handler that echoes the request's version as `runtime_version`. */
export const version: UnaryHandler = (request) =>
  Promise.resolve({ version: "0.1.0", runtime_name: "pve-cri", runtime_version: request.version });

/** A whole Version request on `streamId`, its header block as given (HPACK bytes) or plain. */
export async function callVersion(
  h2: H2Client,
  streamId: number,
  block = encodeLiteralBlock(grpcRequestHeaders(Version.path)),
): Promise<Response> {
  h2.headerBlock(streamId, block);
  h2.data(streamId, grpcMessage(Version.encodeRequest({})), { endStream: true });
  return await h2.response(streamId);
}

/** A Version call succeeds on `h2` (stream `streamId`), or on a fresh connection to a socket. */
export async function stillServes(target: H2Client | string, streamId = 1): Promise<void> {
  if (typeof target === "string") {
    await using h2 = await H2Client.connect(target);
    return await stillServes(h2, streamId);
  }
  assert.equal(grpcStatus(await callVersion(target, streamId)), "0");
}
