/**
 * Every CRI method pve-cri implements, and its own ImageTool, bound to a runtime; the rest
 * answer UNIMPLEMENTED.
 */
import type { PodRuntime } from "../../runtime/api.ts";
import { containerStats } from "./methods/container_stats.ts";
import { containerStatus } from "./methods/container_status.ts";
import { createContainer } from "./methods/create_container.ts";
import { execSync, reopenContainerLog } from "./methods/exec_sync.ts";
import { getContainerEvents } from "./methods/get_container_events.ts";
import { imageFsInfo, imageStatus, listImages, pullImage, removeImage } from "./methods/images.ts";
import { toolImport, toolPull } from "./methods/image_tool.ts";
import { listContainerStats } from "./methods/list_container_stats.ts";
import { listContainers } from "./methods/list_containers.ts";
import { listPodSandbox } from "./methods/list_pod_sandbox.ts";
import { listPodSandboxStats, podSandboxStats } from "./methods/pod_sandbox_stats.ts";
import { podSandboxStatus } from "./methods/pod_sandbox_status.ts";
import { removeContainer } from "./methods/remove_container.ts";
import { removePodSandbox } from "./methods/remove_pod_sandbox.ts";
import { runPodSandbox } from "./methods/run_pod_sandbox.ts";
import { runtimeConfig } from "./methods/runtime_config.ts";
import { startContainer } from "./methods/start_container.ts";
import { status } from "./methods/status.ts";
import { stopContainer } from "./methods/stop_container.ts";
import { stopPodSandbox } from "./methods/stop_pod_sandbox.ts";
import { updateContainerResources } from "./methods/update_container_resources.ts";
import { updateRuntimeConfig } from "./methods/update_runtime_config.ts";
import { version } from "./methods/version.ts";
import type { CriHandlers } from "./rpc.ts";

export function criHandlers(rt: PodRuntime): CriHandlers {
  return {
    runtime: {
      Version: version(rt),
      Status: status(rt),
      RuntimeConfig: runtimeConfig(),
      UpdateRuntimeConfig: updateRuntimeConfig(rt),
      RunPodSandbox: runPodSandbox(rt),
      StopPodSandbox: stopPodSandbox(rt),
      RemovePodSandbox: removePodSandbox(rt),
      PodSandboxStatus: podSandboxStatus(rt),
      ListPodSandbox: listPodSandbox(rt),
      CreateContainer: createContainer(rt),
      StartContainer: startContainer(rt),
      StopContainer: stopContainer(rt),
      RemoveContainer: removeContainer(rt),
      ContainerStatus: containerStatus(rt),
      ListContainers: listContainers(rt),
      UpdateContainerResources: updateContainerResources(rt),
      ContainerStats: containerStats(rt),
      ListContainerStats: listContainerStats(rt),
      PodSandboxStats: podSandboxStats(rt),
      ListPodSandboxStats: listPodSandboxStats(rt),
      GetContainerEvents: getContainerEvents(rt),
      ExecSync: execSync(rt),
      ReopenContainerLog: reopenContainerLog(rt),
    },
    image: {
      ListImages: listImages(rt),
      ImageStatus: imageStatus(rt),
      PullImage: pullImage(rt),
      RemoveImage: removeImage(rt),
      ImageFsInfo: imageFsInfo(rt),
    },
    tool: {
      Pull: toolPull(rt),
      Import: toolImport(rt),
    },
  };
}
