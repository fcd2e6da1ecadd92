/**
 * How `oci-registry-pull` gets an image: as PVE 9.1 does (pve-storage `Status.pm`), with
 * `skopeo copy docker://REF oci-archive:FILE.tmp.PID`, renamed into place when done. Where
 * skopeo is missing, the call fails before a task starts, with PVE's message.
 */
import type { TaskLog } from "./driver.ts";

export interface OciPuller {
  /** Why pulls cannot work on this node (PVE's message), or undefined when they can. */
  unavailable(): string | undefined;
  /** Writes the image of `reference` as an OCI archive to `path`. */
  pull(request: { reference: string; path: string; log: TaskLog }): Promise<void>;
}

export interface SkopeoPullerOptions {
  binary?: string;
  /**
   * The registries.conf skopeo reads in place of the node's `/etc/containers/registries.conf`
   * (e.g. one marking a test's plain-HTTP registry insecure).
   */
  registriesConf?: string;
}

export function skopeoPuller(options: SkopeoPullerOptions = {}): OciPuller {
  const binary = options.binary ?? "/usr/bin/skopeo";
  return {
    unavailable() {
      try {
        return Deno.statSync(binary).isFile ? undefined : missing;
      } catch {
        return missing;
      }
    },
    async pull({ reference, path, log }) {
      const temp = `${path}.tmp.${Deno.pid}`;
      log.log(`Copying image ${reference}`);
      const out = await new Deno.Command(binary, {
        args: [
          ...(options.registriesConf === undefined
            ? []
            : ["--registries-conf", options.registriesConf]),
          "copy",
          `docker://${reference}`,
          `oci-archive:${temp}`,
        ],
        stdout: "piped",
        stderr: "piped",
        signal: log.signal,
      }).output();
      for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
        if (line.trim() !== "") log.log(line);
      }
      if (out.code !== 0) {
        await Deno.remove(temp).catch(() => {});
        const why = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) ?? "";
        throw new Error(`failed to pull OCI image: ${why}`);
      }
      await Deno.rename(temp, path);
    },
  };
}

const missing = "Install 'skopeo' to pull OCI images from registries.";
