/** `/nodes/{node}/tasks…`: the task list, one task's status and log, stopping a task. */
import { parseUpid } from "../upid.ts";
import { type Endpoint, Envelope, type SimNode } from "./endpoint.ts";
import { parameterError } from "./http_error.ts";
import { nodeParam, vmidParam } from "./schema/lxc_options.ts";
import type { TaskRecord } from "./tasks.ts";

const upidPath = { node: nodeParam, upid: { type: "string" } } as const;

export function taskEndpoints(node: SimNode): Endpoint[] {
  const find = (upid: string): TaskRecord => {
    if (parseUpid(upid) === undefined) {
      throw parameterError({ upid: "unable to parse worker upid" });
    }
    const task = node.tasks.get(upid);
    if (task === undefined) throw parameterError({ upid: "no such task" });
    return task;
  };

  return [
    {
      method: "GET",
      path: "/nodes/{node}/tasks",
      params: {
        errors: { type: "boolean", optional: true },
        limit: { type: "integer", optional: true, minimum: 0 },
        since: { type: "integer", optional: true },
        source: { type: "string", optional: true, enum: ["archive", "active", "all"] },
        start: { type: "integer", optional: true, minimum: 0 },
        statusfilter: { type: "string", optional: true, format: "pve-task-status-type-list" },
        typefilter: { type: "string", optional: true },
        until: { type: "integer", optional: true },
        userfilter: { type: "string", optional: true },
        vmid: { ...vmidParam, optional: true },
        node: nodeParam,
      },
      handle({ params }) {
        const tasks = node.tasks.list({
          ...(params.vmid === undefined ? {} : { vmid: Number(params.vmid) }),
          ...(params.typefilter === undefined ? {} : { typefilter: String(params.typefilter) }),
          ...(params.userfilter === undefined ? {} : { userfilter: String(params.userfilter) }),
          ...(params.source === undefined
            ? {}
            : { source: params.source as "archive" | "active" | "all" }),
          ...(params.since === undefined ? {} : { since: Number(params.since) }),
          ...(params.until === undefined ? {} : { until: Number(params.until) }),
          ...(params.start === undefined ? {} : { start: Number(params.start) }),
          ...(params.limit === undefined ? {} : { limit: Number(params.limit) }),
          ...(params.statusfilter === undefined
            ? {}
            : { statusfilter: String(params.statusfilter) }),
          errors: params.errors === 1,
        });
        return tasks.map((t) => ({
          upid: t.upid,
          node: t.node,
          pid: t.pid,
          pstart: t.pstart,
          starttime: t.starttime,
          type: t.type,
          id: t.id,
          user: t.user,
          ...(t.endtime === undefined ? {} : { endtime: t.endtime }),
          ...(t.exitstatus === undefined ? {} : { status: t.exitstatus }),
        }));
      },
    },
    {
      method: "GET",
      path: "/nodes/{node}/tasks/{upid}/status",
      params: upidPath,
      handle({ params }) {
        const task = find(String(params.upid));
        const [user, tokenid] = task.user.split("!");
        return {
          upid: task.upid,
          node: task.node,
          pid: task.pid,
          pstart: task.pstart,
          starttime: task.starttime,
          type: task.type,
          id: task.id,
          user,
          ...(tokenid === undefined ? {} : { tokenid }),
          status: task.status,
          ...(task.exitstatus === undefined ? {} : { exitstatus: task.exitstatus }),
        };
      },
    },
    {
      method: "GET",
      path: "/nodes/{node}/tasks/{upid}/log",
      params: {
        download: { type: "boolean", optional: true },
        limit: { type: "integer", optional: true, minimum: 0 },
        start: { type: "integer", optional: true, minimum: 0 },
        ...upidPath,
      },
      handle({ params }) {
        const task = find(String(params.upid));
        const lines = task.log.length === 0 ? ["no content"] : task.log;
        const start = Number(params.start ?? 0);
        const limit = Number(params.limit ?? 50);
        const end = limit === 0 ? lines.length : start + limit;
        const rows = lines.slice(start, end).map((t, i) => ({ n: start + i + 1, t }));
        return new Envelope(rows, { total: lines.length });
      },
    },
    {
      method: "DELETE",
      path: "/nodes/{node}/tasks/{upid}",
      params: upidPath,
      handle({ params }) {
        node.tasks.stop(find(String(params.upid)).upid);
        return null;
      },
    },
  ];
}
