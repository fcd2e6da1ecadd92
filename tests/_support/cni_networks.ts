/** Pod networks the tests and benchmarks put on bridges of their own (bridge + host-local). */
import { defaultCniBinDirs } from "../../adapters/cni/cni_network.ts";

export const cniBinDirs = defaultCniBinDirs;

/**
 * A conflist of one bridge plugin with host-local addresses kept in `dataDir`: from `subnet`
 * (`10.88.X.0/24`), or, with none, from the pod CIDRs the runtime passes as `ipRanges`.
 */
export function bridgeNetwork(options: {
  name: string;
  bridge: string;
  dataDir: string;
  subnet?: string;
}): { cniVersion: string; name: string; plugins: Record<string, unknown>[] } {
  return {
    cniVersion: "1.0.0",
    name: options.name,
    plugins: [{
      type: "bridge",
      bridge: options.bridge,
      isGateway: true,
      ...(options.subnet === undefined ? { capabilities: { ipRanges: true } } : {}),
      ipam: {
        type: "host-local",
        ...(options.subnet === undefined ? {} : { ranges: [[{ subnet: options.subnet }]] }),
        dataDir: options.dataDir,
      },
    }],
  };
}
