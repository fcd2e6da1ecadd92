/**
 * The methods pve-cri serves, straight from the parsed descriptor (`proto/descriptor.json`)
 * through protobufjs: a path, streaming flags, and the request decoder and response encoder
 * with {@link PROTO_LOADER_OPTIONS}' mapping. What @grpc/proto-loader would build, without
 * its descriptor-of-every-message work: loading it and building its definition cost ~60 ms
 * of each start; this costs ~15.
 */
import protobuf from "protobufjs/light.js";
import descriptor from "../../proto/descriptor.json" with { type: "json" };
import { type CriMessage, PROTO_LOADER_OPTIONS } from "./rpc.ts";

export interface ProtoMethod {
  /** `/runtime.v1.RuntimeService/Version`, as gRPC names it on the wire. */
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  decodeRequest(bytes: Uint8Array): CriMessage;
  encodeResponse(message: CriMessage): Uint8Array;
}

const conversion: protobuf.IConversionOptions = {
  longs: PROTO_LOADER_OPTIONS.longs,
  enums: PROTO_LOADER_OPTIONS.enums,
  defaults: PROTO_LOADER_OPTIONS.defaults,
  oneofs: PROTO_LOADER_OPTIONS.oneofs,
} as protobuf.IConversionOptions;

let root: protobuf.Namespace | undefined;

/** A service's methods by name (`runtime.v1.RuntimeService`); unknown services throw. */
export function serviceMethods(service: string): Map<string, ProtoMethod> {
  const services = root ??= protobuf.Root.fromJSON(descriptor as protobuf.INamespace).resolveAll();
  const methods = new Map<string, ProtoMethod>();
  for (const method of services.lookupService(service).methodsArray) {
    const request = method.resolvedRequestType!;
    const response = method.resolvedResponseType!;
    methods.set(method.name, {
      path: `/${service}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      decodeRequest: (bytes) => request.toObject(request.decode(bytes), conversion),
      encodeResponse: (message) => {
        // As proto-loader refuses an array where a message belongs.
        if (Array.isArray(message)) {
          throw new TypeError(`expected a ${response.name} message, got an array`);
        }
        return response.encode(response.fromObject(message)).finish();
      },
    });
  }
  return methods;
}
