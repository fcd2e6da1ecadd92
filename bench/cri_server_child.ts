/**
 * The CRI server alone in a process, as the kubelet sees it, for bench/cri.ts: Version, and
 * ListContainers answering `CONTAINERS` (an argument) containers shaped like the kubelet's.
 * Prints "ready" once it listens.
 *
 *   deno run --allow-all bench/cri_server_child.ts SOCKET_PATH CONTAINERS
 */
import { startCriServer } from "../adapters/cri/grpc_server.ts";
import { silentLogger } from "../lib/log.ts";

const [socketPath, count = "10000"] = Deno.args;
if (socketPath === undefined) throw new TypeError("Usage: cri_server_child.ts SOCKET_PATH N");

const containers = Array.from({ length: Number(count) }, (_, i) => ({
  id: `${i}`.padStart(64, "c"),
  pod_sandbox_id: `${i % 1000}`.padStart(64, "p"),
  metadata: { name: `container-${i}`, attempt: 0 },
  image: { image: "docker.io/library/busybox:1.36" },
  image_ref: "sha256:" + "a".repeat(64),
  state: "CONTAINER_RUNNING",
  created_at: "1700000000123456789",
  labels: {
    "io.kubernetes.pod.name": `pod-${i % 1000}`,
    "io.kubernetes.pod.namespace": "default",
    "io.kubernetes.container.name": `container-${i}`,
  },
}));

await startCriServer({
  socketPath,
  handlers: {
    runtime: {
      Version: () => Promise.resolve({ version: "0.1.0", runtime_name: "pve-cri" }),
      ListContainers: () => Promise.resolve({ containers }),
    },
    image: {},
  },
  isReady: () => true,
  log: silentLogger,
});
Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
