/**
 * What to do when a write's answer was lost. PVE may have done it, so it is never simply sent
 * again: the node's task list (filtered by vmid, type and our user, since just before the
 * attempt) tells whether the write started a task. A running task is ours to wait for; a
 * stopped one counts if the CT is now as asked (status or config); otherwise — no task, or an
 * old one — the write did not happen and is sent once more.
 */
import type { Logger } from "../../lib/log.ts";
import type { WriteOutcomeUnknown } from "./request.ts";

export interface TaskListEntry {
  upid: string;
  type: string;
  id: string;
  user: string;
  starttime: number;
  /** Exit status once finished; absent while running. */
  status?: string;
}

export interface RecoveryContext {
  listTasks(
    node: string,
    filter: { vmid?: number; typefilter: string; userfilter: string },
  ): Promise<TaskListEntry[]>;
  /** Our user as the task list shows it. */
  userid: string;
  /** How far the node's clock may be behind ours. */
  maxClockSkewSeconds: number;
  logger: Logger;
}

export interface LostWrite<R = string> {
  node: string;
  /** Task type the write starts (`vzstart`, `vzcreate`, …). */
  type: string;
  vmid?: number;
  /** Task id to match when there is no vmid (e.g. the file of a pull). */
  id?: string;
  /** When the lost attempt was sent (ms, our clock). */
  sentAt: number;
  /** Whether the CT is already as the write asked (checked only for a finished task). */
  goalReached(): Promise<boolean>;
  /** Sends the write once more; what it answers is the result. */
  resend(): Promise<R>;
}

/** The UPID of the task the lost write started, or what sending it again answers. */
export async function recoverLostWrite<R>(
  context: RecoveryContext,
  write: LostWrite<R>,
  lost: WriteOutcomeUnknown,
): Promise<string | R> {
  const since = Math.floor(write.sentAt / 1000) - context.maxClockSkewSeconds;
  const tasks = await context.listTasks(write.node, {
    ...(write.vmid === undefined ? {} : { vmid: write.vmid }),
    typefilter: write.type,
    userfilter: context.userid,
  });
  const task = tasks.find((t) =>
    t.type === write.type && t.user === context.userid && t.starttime >= since &&
    (write.id === undefined || t.id === write.id)
  );
  const log = { type: write.type, vmid: write.vmid, error: lost.error.message };
  if (task !== undefined && (task.status === undefined || await write.goalReached())) {
    context.logger.info("proxmox write answer lost; it had started a task", {
      ...log,
      upid: task.upid,
    });
    return task.upid;
  }
  context.logger.info("proxmox write answer lost; it had not taken effect, sending again", log);
  return await write.resend();
}
