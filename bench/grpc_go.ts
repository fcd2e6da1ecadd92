/**
 * bench/grpc_go/version_load.go, built with Debian's Go and golang-google-grpc-dev: the
 * Version load as a grpc-go client (the kubelet's and crictl's library) measures it.
 */
import { fileURLToPath } from "node:url";

export interface GrpcGoLoad {
  p50_ms: number;
  p99_ms: number;
  calls: number;
  clients: number;
}

const source = fileURLToPath(new URL("./grpc_go/version_load.go", import.meta.url));
const gopath = "/usr/share/gocode";

/** Builds the client into `dir`; a reason string when Go or grpc-go is not installed. */
export async function buildGrpcGoClient(dir: string): Promise<string | { binary: string }> {
  try {
    Deno.statSync(`${gopath}/src/google.golang.org/grpc`);
  } catch {
    return "grpc-go not installed (apt-get install golang-go golang-google-grpc-dev)";
  }
  const binary = `${dir}/version_load`;
  let out;
  try {
    out = await new Deno.Command("go", {
      args: ["build", "-o", binary, source],
      env: { GO111MODULE: "off", GOPATH: gopath },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    return "go not installed (apt-get install golang-go golang-google-grpc-dev)";
  }
  if (!out.success) return `go build failed: ${new TextDecoder().decode(out.stderr).trim()}`;
  return { binary };
}

/** Runs the load against `socket`: `clients` connections, `calls` measured calls each. */
export async function grpcGoVersionLoad(
  binary: string,
  socket: string,
  options: { clients: number; calls: number; warmup: number },
): Promise<GrpcGoLoad> {
  const out = await new Deno.Command(binary, {
    args: [
      `-socket=${socket}`,
      `-clients=${options.clients}`,
      `-calls=${options.calls}`,
      `-warmup=${options.warmup}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (!out.success) throw new Error(`grpc-go load client: ${text.decode(out.stderr).trim()}`);
  return JSON.parse(text.decode(out.stdout));
}
