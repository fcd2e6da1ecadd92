/**
 * CPU shares (cgroup v1, 2–262144, 1024 = one CPU's worth) and weight (cgroup v2, 1–10000,
 * 100 by default), converted both ways as runc converts them.
 */

/** runc's v1 shares (2–262144) → v2 weight (1–10000). */
export function sharesToWeight(shares: bigint): number {
  const clamped = shares < 2n ? 2n : shares > 262_144n ? 262_144n : shares;
  return Number(1n + ((clamped - 2n) * 9999n) / 262_142n);
}

/** The inverse, for a cgroup v1 host: v2 weight → v1 shares. */
export function weightToShares(weight: number): number {
  const clamped = Math.max(1, Math.min(10_000, Math.trunc(weight)));
  return 2 + Math.trunc(((clamped - 1) * 262_142) / 9999);
}
