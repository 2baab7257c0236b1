/**
 * The comparison's promises, checked against its own rows. A goal that cannot be evaluated (no
 * reference installed, a scenario not run) says so instead of passing.
 */
import type { Goal, Row } from "./report/Report.ts"

const find = (rows: ReadonlyArray<Row>, scenario: string, algorithm: string) =>
  rows.find((row) => row.scenario === scenario && row.algorithm === algorithm)

const bestReference = (rows: ReadonlyArray<Row>, scenario: string) =>
  rows
    .filter((row) => row.scenario === scenario && row.reference)
    .reduce<Row | undefined>(
      (best, row) => (best === undefined || row.p99_ms < best.p99_ms ? row : best),
      undefined,
    )

const goal = (
  name: string,
  measured: number | undefined,
  comparison: "≤" | "≥",
  limit: number | undefined,
  note: string,
): Goal => {
  const known = measured !== undefined && limit !== undefined && Number.isFinite(measured)
  return {
    name,
    measured: measured ?? Number.NaN,
    limit: limit ?? Number.NaN,
    comparison,
    pass: known ? (comparison === "≤" ? measured <= limit : measured >= limit) : undefined,
    note,
  }
}

/** Largest share any replica got in any one-second window, over the mean share (1 / replicas). */
export const peakWindowShare = (row: Row): number => {
  const replicas = Object.keys(row.share).length
  let peak = 0
  for (const window of row.per_second) {
    const total = Object.values(window).reduce((a, b) => a + b, 0)
    if (total === 0) continue
    for (const count of Object.values(window)) peak = Math.max(peak, (count / total) * replicas)
  }
  return peak
}

export const evaluateGoals = (rows: ReadonlyArray<Row>): Array<Goal> => {
  const goals: Array<Goal> = []
  const slowAdaptive = find(rows, "slow-replica", "adaptive")
  const slowRr = find(rows, "slow-replica", "round-robin")
  const slowRef = bestReference(rows, "slow-replica")
  goals.push(
    goal(
      "slow-replica: adaptive p99 ÷ round-robin p99",
      slowAdaptive && slowRr && slowAdaptive.p99_ms / slowRr.p99_ms,
      "≤",
      0.5,
      slowAdaptive && slowRr ? `${slowAdaptive.p99_ms} ms vs ${slowRr.p99_ms} ms` : "not run",
    ),
    goal(
      "slow-replica: adaptive p99 ÷ best reference p99",
      slowAdaptive && slowRef && slowAdaptive.p99_ms / slowRef.p99_ms,
      "≤",
      0.8,
      slowAdaptive === undefined
        ? "not run"
        : slowRef
          ? `best reference: ${slowRef.algorithm} at ${slowRef.p99_ms} ms`
          : "no reference ran",
    ),
    goal("slow-replica: adaptive errors", slowAdaptive?.errors, "≤", 0, slowAdaptive ? "" : "not run"),
  )
  for (const algorithm of ["lease", "hybrid", "adaptive"]) {
    const row = find(rows, "homogeneous", algorithm)
    goals.push(
      goal(
        `homogeneous: ${algorithm} CPU coefficient of variation, %`,
        row?.cpu_cv,
        "≤",
        15,
        row ? "" : "not run",
      ),
    )
  }
  const homAdaptive = find(rows, "homogeneous", "adaptive")
  const homRef = bestReference(rows, "homogeneous")
  goals.push(
    goal(
      "homogeneous: adaptive p99 ÷ best reference p99",
      homAdaptive && homRef && homAdaptive.p99_ms / homRef.p99_ms,
      "≤",
      1.1,
      homAdaptive === undefined
        ? "not run"
        : homRef
          ? `best reference: ${homRef.algorithm} at ${homRef.p99_ms} ms`
          : "no reference ran",
    ),
  )
  const metricsRows = rows.filter((row) => row.algorithm === "metrics")
  const worst = metricsRows.reduce<{ peak: number; scenario: string } | undefined>((acc, row) => {
    const peak = peakWindowShare(row)
    return acc === undefined || peak > acc.peak ? { peak, scenario: row.scenario } : acc
  }, undefined)
  goals.push(
    goal(
      "metrics: largest one-second share ÷ mean share",
      worst?.peak,
      "≤",
      2,
      worst ? `worst window in ${worst.scenario}` : "not run",
    ),
  )
  return goals
}
