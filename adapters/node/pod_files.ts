/**
 * The files a pod's containers share, in the pod dir: resolv.conf from the sandbox's DNS
 * config, hostname, and hosts (mounted only where the kubelet does not mount its own).
 */
import { join } from "node:path";
import type { DnsConfig } from "../../runtime/api.ts";

export interface PodFiles {
  resolvConf?: string;
  hostname: string;
  hosts: string;
}

export function writePodFiles(
  dir: string,
  pod: { hostname: string; dns: DnsConfig | null; hostNetwork: boolean },
): PodFiles {
  Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const files: PodFiles = { hostname: join(dir, "hostname"), hosts: join(dir, "hosts") };
  const hostname = pod.hostNetwork ? Deno.hostname() : pod.hostname;
  Deno.writeTextFileSync(files.hostname, `${hostname}\n`);
  Deno.writeTextFileSync(
    files.hosts,
    `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`,
  );
  if (pod.dns !== null) {
    const lines = [
      ...pod.dns.searches.length > 0 ? [`search ${pod.dns.searches.join(" ")}`] : [],
      ...pod.dns.servers.map((s) => `nameserver ${s}`),
      ...pod.dns.options.length > 0 ? [`options ${pod.dns.options.join(" ")}`] : [],
    ];
    files.resolvConf = join(dir, "resolv.conf");
    Deno.writeTextFileSync(files.resolvConf, lines.join("\n") + "\n");
  } else if (pod.hostNetwork) {
    // The node's, as of now: a host-network pod resolves as the node does.
    files.resolvConf = join(dir, "resolv.conf");
    Deno.copyFileSync("/etc/resolv.conf", files.resolvConf);
  }
  return files;
}

export function podFilesIn(dir: string): PodFiles {
  const resolvConf = join(dir, "resolv.conf");
  let hasResolv = true;
  try {
    Deno.statSync(resolvConf);
  } catch {
    hasResolv = false;
  }
  return {
    hostname: join(dir, "hostname"),
    hosts: join(dir, "hosts"),
    ...(hasResolv ? { resolvConf } : {}),
  };
}
