/**
 * A response a handler has already encoded to protobuf bytes (the big list calls keep their
 * entries encoded between calls); the server sends it as is.
 */
export class EncodedResponse {
  constructor(readonly bytes: Uint8Array) {}
}
