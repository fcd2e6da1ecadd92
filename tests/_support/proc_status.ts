/** A field of `/proc/PID/status` in kB (VmRSS, VmHWM, …); 0 when the process is gone. */
export function statusKb(pid: number, field: string): number {
  let status: string;
  try {
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return 0;
  }
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
}
