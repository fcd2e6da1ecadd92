import { UnavailableError } from "../../lib/errors.ts";
import type {
  CniRequest,
  CniResult,
  NetworkAttachment,
  NetworkPlugin,
  NetworkStatus,
} from "./mod.ts";

/**
 * One pod network with host-local-style IPAM over 10.88.0.0/16, kept in memory. ADD for an
 * attachment that exists returns its address again; DEL of an unknown one succeeds.
 */
export class FakeCni implements NetworkPlugin {
  readonly network: string;
  readonly #leases = new Map<string, number>();
  readonly #used = new Set<number>();

  constructor(options: { network?: string } = {}) {
    this.network = options.network ?? "pve-cri-pods";
  }

  status(): Promise<NetworkStatus> {
    return Promise.resolve({ ready: true, reason: "", message: `memory network ${this.network}` });
  }

  networksFor(hostNetwork: boolean): NetworkAttachment[] {
    return hostNetwork ? [] : [{ name: this.network, ifname: "eth0" }];
  }

  add(request: CniRequest): Promise<CniResult> {
    const key = leaseKey(request);
    let host = this.#leases.get(key);
    if (host === undefined) {
      host = this.#free();
      this.#leases.set(key, host);
      this.#used.add(host);
    }
    const address = `10.88.${host >> 8}.${host & 0xff}/16`;
    return Promise.resolve({
      cniVersion: "1.0.0",
      interfaces: [{ name: request.ifname, sandbox: request.netns }],
      ips: [{ address, gateway: "10.88.0.1", interface: 0 }],
    });
  }

  del(request: CniRequest): Promise<void> {
    const key = leaseKey(request);
    const host = this.#leases.get(key);
    if (host !== undefined) this.#used.delete(host);
    this.#leases.delete(key);
    return Promise.resolve();
  }

  /** Attachments with an address, for tests that look for leaks. */
  get leases(): number {
    return this.#leases.size;
  }

  #free(): number {
    // .0.0 is the network, .0.1 the gateway, .255.255 broadcast.
    for (let host = 2; host < 0xffff; host++) if (!this.#used.has(host)) return host;
    throw new UnavailableError("No free address in 10.88.0.0/16");
  }
}

function leaseKey(r: CniRequest): string {
  return `${r.sandboxId}/${r.name}/${r.ifname}`;
}
