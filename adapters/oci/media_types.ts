/** The media types of OCI and Docker schema 2 images, and what pve-cri does with each. */

export const mediaTypes = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociNondistributableLayer: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  ociNondistributableLayerGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  ociLayout: "application/vnd.oci.layout.header.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** What a registry is asked for when resolving a reference: every manifest kind we read. */
export const manifestAccept = [
  mediaTypes.ociIndex,
  mediaTypes.ociManifest,
  mediaTypes.dockerManifestList,
  mediaTypes.dockerManifest,
].join(", ");

export function isIndexType(type: string): boolean {
  return type === mediaTypes.ociIndex || type === mediaTypes.dockerManifestList;
}

export function isManifestType(type: string): boolean {
  return type === mediaTypes.ociManifest || type === mediaTypes.dockerManifest;
}

export type Compression = "none" | "gzip" | "zstd";

/** How a layer is compressed, or undefined when the media type is not a layer we know. */
export function layerCompression(type: string): Compression | undefined {
  switch (type) {
    case mediaTypes.ociLayer:
    case mediaTypes.ociNondistributableLayer:
    case mediaTypes.dockerLayer:
      return "none";
    case mediaTypes.ociLayerGzip:
    case mediaTypes.ociNondistributableLayerGzip:
    case mediaTypes.dockerLayerGzip:
    case mediaTypes.dockerForeignLayerGzip:
      return "gzip";
    case mediaTypes.ociLayerZstd:
      return "zstd";
    default:
      return undefined;
  }
}

/** The OCI layer media type for a compression: what an OCI archive for Proxmox holds. */
export function ociLayerType(compression: Compression): string {
  return compression === "gzip"
    ? mediaTypes.ociLayerGzip
    : compression === "zstd"
    ? mediaTypes.ociLayerZstd
    : mediaTypes.ociLayer;
}
