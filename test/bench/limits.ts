/**
 * `--limits`: what each limit costs on the data plane. Beside a `lease` balancer without limits, the
 * same balancer with one limit that is never reached: a per-replica cap, a client rate limit counted
 * in memory, and the same counted in a real Redis (Debian's redis-server on loopback). Each is
 * compared with `lease` of the same round, so the machine's drift cancels out.
 */
import { startRedis } from "../support/redis.ts"
import { formatTable, median } from "./report.ts"

export interface LimitVariant {
  readonly name: string
  readonly env: Record<string, string>
}

/** High enough never to refuse a request in a benchmark. */
const NEVER_REACHED_RATE = "1000000000/s"

export const startLimitVariants = async (): Promise<{
  readonly variants: ReadonlyArray<LimitVariant>
  readonly stop: () => Promise<void>
}> => {
  const redis = await startRedis()
  return {
    variants: [
      { name: "lease+cap", env: { REPLICA_MAX_REQUESTS: "1000000" } },
      { name: "lease+rate", env: { RATE_LIMIT: NEVER_REACHED_RATE } },
      { name: "lease+redis", env: { RATE_LIMIT: NEVER_REACHED_RATE, RATE_LIMIT_REDIS_URL: redis.url } },
    ],
    stop: redis.stop,
  }
}

/** A limit that is never hit costs at most this share of the throughput. */
const GOAL_RATIO = 0.97

interface RoundFigures {
  readonly requestsPerSecond: number
  readonly p99Ms: number
  readonly errors: number
  readonly non2xx: number
}

const fmt = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "-")

/**
 * Per variant, the per-round ratio of its throughput to `lease`'s and the p99 it adds. The verdict
 * is on the range of the ratios: PASS when every round is at or above the goal, MISS when none is,
 * inconclusive when the rounds straddle it.
 */
export const printLimitCosts = (results: ReadonlyMap<string, ReadonlyArray<RoundFigures>>) => {
  const base = results.get("lease")
  if (base === undefined) return
  const rows = [...results.entries()]
    .filter(([name]) => name.startsWith("lease+"))
    .map(([name, rounds]) => {
      const ratios = rounds.map((m, i) => m.requestsPerSecond / base[i]!.requestsPerSecond)
      const addedP99 = rounds.map((m, i) => m.p99Ms - base[i]!.p99Ms)
      const low = Math.min(...ratios)
      const high = Math.max(...ratios)
      const verdict = low >= GOAL_RATIO ? "PASS" : high < GOAL_RATIO ? "MISS" : "inconclusive"
      return [
        name,
        fmt(median(rounds.map((m) => m.requestsPerSecond)), 0),
        fmt(median(ratios), 3),
        `${fmt(low, 3)}–${fmt(high, 3)}`,
        fmt(median(addedP99), 2),
        String(rounds.reduce((sum, m) => sum + m.errors + m.non2xx, 0)),
        name === "lease+redis" ? "(reported)" : verdict,
      ]
    })
  if (rows.length === 0) return
  console.log(
    `\nWhat the limits cost (never reached), against lease in the same round; ${base.length} round(s):`,
  )
  console.log(
    formatTable(
      ["target", "req/s", "×lease", "range", "added p99 ms", "errors", `goal ≥${GOAL_RATIO}`],
      rows,
    ),
  )
}
