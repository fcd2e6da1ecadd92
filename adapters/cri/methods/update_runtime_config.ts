import { InvalidArgumentError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import type { Message } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

const field = "runtime_config.network_config.pod_cidr";
const ipv4Cidr = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const ipv6Cidr = /^[0-9a-fA-F:]+:[0-9a-fA-F:]*\/(\d{1,3})$/;

/** The kubelet's node pod CIDR (comma-separated when dual stack); empty changes nothing. */
export const updateRuntimeConfig = (rt: PodRuntime): UnaryHandler => (request: Message) => {
  const text = String(request.runtime_config?.network_config?.pod_cidr ?? "");
  const cidrs = text.split(",").map((c) => c.trim()).filter((c) => c !== "");
  for (const cidr of cidrs) {
    const v4 = ipv4Cidr.exec(cidr);
    const ok = v4 !== null
      ? v4.slice(1, 5).every((o) => Number(o) <= 255) && Number(v4[5]) <= 32
      : ipv6Cidr.test(cidr) && Number(cidr.split("/")[1]) <= 128;
    if (!ok) {
      throw new InvalidArgumentError(`${field}: "${cidr}" is not a CIDR`, { details: { field } });
    }
  }
  if (cidrs.length > 0) rt.setPodCidrs(cidrs);
  return Promise.resolve({});
};
