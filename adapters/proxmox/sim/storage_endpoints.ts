/**
 * `/nodes/{node}/storage…`: storage status, content listing, volume info and deletion,
 * template upload and OCI image pulls into `vztmpl` storage.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { ApiRequest, Endpoint, SimNode } from "./endpoint.ts";
import { taskFaults } from "./faults.ts";
import { handlerError, PveHttpError } from "./http_error.ts";
import { nodeParam, vmidParam } from "./schema/lxc_options.ts";
import { normalizeFilename } from "./storage.ts";
import type { TaskWork } from "./tasks.ts";

/** A file's digest, read as a stream (uploads are large), in hex as PVE compares it. */
async function fileDigest(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  const file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

const storageParam = { type: "string", format: "pve-storage-id" } as const;

export function storageEndpoints(node: SimNode): Endpoint[] {
  const spawn = (request: ApiRequest, type: string, id: string, work: TaskWork) =>
    node.tasks.spawn({
      type,
      id,
      user: request.caller!.upidUser,
      work,
      ...taskFaults(request.faults),
    });
  const volumeOf = (params: ApiRequest["params"]) => {
    const volume = String(params.volume);
    return volume.includes(":") ? volume : `${params.storage}:${volume}`;
  };
  const findVolume = (params: ApiRequest["params"]) => {
    const volid = volumeOf(params);
    const storage = volid.slice(0, volid.indexOf(":"));
    const found = node.storage.list(storage, {}).find((v) => v.volid === volid);
    if (found === undefined) throw handlerError(`volume '${volid}' does not exist`);
    return found;
  };

  return [
    {
      method: "GET",
      path: "/nodes/{node}/storage",
      params: {
        content: { type: "string", optional: true, format: "pve-storage-content-list" },
        enabled: { type: "boolean", optional: true },
        format: { type: "boolean", optional: true },
        storage: { ...storageParam, optional: true },
        target: { ...nodeParam, optional: true },
        node: nodeParam,
      },
      handle({ params }) {
        const wanted = params.content === undefined
          ? undefined
          : String(params.content).split(/[,;]/);
        return node.storage.definitions()
          .filter((s) => params.storage === undefined || s.id === params.storage)
          .filter((s) => wanted === undefined || wanted.some((c) => s.content.includes(c)))
          .map((s) => {
            const { used, total } = node.storage.usage(s.id);
            return {
              storage: s.id,
              type: s.type,
              content: s.content.join(","),
              active: 1,
              enabled: 1,
              shared: 0,
              total,
              used,
              avail: total - used,
              used_fraction: used / total,
            };
          });
      },
    },
    {
      method: "GET",
      path: "/nodes/{node}/storage/{storage}/content",
      params: {
        content: { type: "string", optional: true, format: "pve-storage-content" },
        vmid: { ...vmidParam, optional: true },
        node: nodeParam,
        storage: storageParam,
      },
      handle({ params }) {
        return node.storage.list(String(params.storage), {
          ...(params.content === undefined ? {} : { content: String(params.content) }),
          ...(params.vmid === undefined ? {} : { vmid: Number(params.vmid) }),
        });
      },
    },
    {
      method: "GET",
      path: "/nodes/{node}/storage/{storage}/content/{volume}",
      params: {
        node: nodeParam,
        storage: { ...storageParam, optional: true },
        volume: { type: "string" },
      },
      handle({ params }) {
        const volume = findVolume(params);
        const storage = volume.volid.slice(0, volume.volid.indexOf(":"));
        const file = volume.volid.slice(volume.volid.indexOf("/") + 1);
        return {
          format: volume.format,
          size: volume.size,
          used: volume.size,
          path: volume.content === "vztmpl"
            ? join(node.storage.templateDir(storage), file)
            : volume.volid,
        };
      },
    },
    {
      method: "DELETE",
      path: "/nodes/{node}/storage/{storage}/content/{volume}",
      params: {
        delay: { type: "integer", optional: true, minimum: 1, maximum: 30 },
        node: nodeParam,
        storage: { ...storageParam, optional: true },
        volume: { type: "string" },
      },
      async handle(request) {
        const volume = findVolume(request.params);
        const upid = spawn(request, "imgdel", "", () => {
          node.storage.deleteVolume(volume.volid);
          if (volume.content === "vztmpl") node.driver.templateRemoved?.();
          return Promise.resolve();
        });
        const delay = request.params.delay;
        if (delay === undefined) return upid;
        const deadline = node.now() + Number(delay) * 1000;
        while (node.tasks.get(upid)?.status === "running" && node.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        return node.tasks.get(upid)?.status === "stopped" ? null : upid;
      },
    },
    {
      method: "POST",
      path: "/nodes/{node}/storage/{storage}/upload",
      params: {
        checksum: { type: "string", optional: true },
        "checksum-algorithm": {
          type: "string",
          optional: true,
          enum: ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
        },
        content: {
          type: "string",
          enum: ["iso", "vztmpl", "import"],
          format: "pve-storage-content",
        },
        filename: { type: "string", maxLength: 255 },
        node: nodeParam,
        storage: storageParam,
        tmpfilename: { type: "string", optional: true, pattern: "/var/tmp/pveupload-[0-9a-f]+" },
      },
      upload: true,
      async handle(request) {
        const { params, file } = request;
        if (file === undefined) {
          throw new PveHttpError(400, "Parameter verification failed.", {
            filename: "missing file upload",
          });
        }
        const storage = String(params.storage);
        node.storage.require(storage, String(params.content));
        const filename = normalizeFilename(String(params.filename));
        if (params.checksum !== undefined) {
          const algorithm = String(params["checksum-algorithm"] ?? "sha256");
          const hex = await fileDigest(file.path, algorithm);
          if (hex !== String(params.checksum).toLowerCase()) {
            throw handlerError(`checksum mismatch: got '${hex}' != expect '${params.checksum}'`);
          }
        }
        // The spooled file is the request's until it is answered: the task gets its own.
        const staged = node.storage.stageUpload(storage, file.path);
        return spawn(request, "imgcopy", "", (log) => {
          log.log(`starting file import from: ${file.path}`);
          log.log(`target file: ${join(node.storage.templateDir(storage), filename)}`);
          node.storage.commitUpload(storage, filename, staged);
          log.log(`file size is: ${file.size}`);
          return Promise.resolve();
        });
      },
    },
    {
      method: "POST",
      path: "/nodes/{node}/storage/{storage}/oci-registry-pull",
      params: {
        filename: { type: "string", optional: true, minLength: 1, maxLength: 255 },
        node: nodeParam,
        reference: {
          type: "string",
          pattern:
            "^(?:(?:[a-zA-Z\\d]|[a-zA-Z\\d][a-zA-Z\\d-]*[a-zA-Z\\d])(?:\\.(?:[a-zA-Z\\d]|[a-zA-Z\\d][a-zA-Z\\d-]*[a-zA-Z\\d]))*(?::\\d+)?/)?[a-z\\d]+(?:(?:[._]|__|[-]*)[a-z\\d]+)*(?:/[a-z\\d]+(?:(?:[._]|__|[-]*)[a-z\\d]+)*)*:\\w[\\w.-]{0,127}$",
        },
        storage: storageParam,
      },
      handle(request) {
        const storage = String(request.params.storage);
        node.storage.require(storage, "vztmpl");
        const unavailable = node.puller.unavailable();
        if (unavailable !== undefined) throw handlerError(unavailable);
        const reference = String(request.params.reference);
        const filename = `${normalizeFilename(String(request.params.filename ?? reference))}.tar`;
        const path = join(node.storage.templateDir(storage), filename);
        if (node.storage.templatePath(`${storage}:vztmpl/${filename}`) !== undefined) {
          throw handlerError(`refusing to override existing file '${filename}'`);
        }
        return spawn(request, "ociregistrypull", encodeURIComponent(filename), async (log) => {
          Deno.mkdirSync(node.storage.templateDir(storage), { recursive: true });
          await node.puller.pull({ reference, path, log });
        });
      },
    },
  ];
}
