/** CRI-level specs for runtime tests. */
import type { ContainerSpec, SandboxSpec } from "../../runtime/api.ts";

export function sandboxSpec(name: string, overrides: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    metadata: { name, uid: `${name}-uid`, namespace: "default", attempt: 0 },
    hostname: name,
    logDirectory: `/var/log/pods/default_${name}`,
    dnsConfig: null,
    portMappings: [],
    labels: { app: name },
    annotations: {},
    hostNetwork: false,
    cgroupParent: "",
    sysctls: {},
    runtimeHandler: "",
    ...overrides,
  };
}

export function containerSpec(name: string, overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name,
    attempt: 0,
    image: "busybox:1.36",
    command: ["/bin/sh", "-c", "sleep 3600"],
    args: [],
    workingDir: "",
    envs: [{ key: "GREETING", value: "hello" }],
    mounts: [],
    labels: { tier: "web" },
    annotations: {},
    logPath: `${name}.log`,
    tty: false,
    stdin: false,
    resources: null,
    ...overrides,
  };
}
