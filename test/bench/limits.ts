/**
 * `--limits`: what each limit costs on the data plane, when it is set but never reached. Balancer
 * processes of the same build differ from one another by up to a third in throughput for their whole
 * life, more than any limit costs, so each limit is measured inside one process: a routes file gives
 * the balancer a route without limits and routes with one limit each, over the same replicas, and each
 * limited route is compared with the plain route of the same process in the same round. One process
 * counts rate limits in memory, the other in a real Redis (Debian's redis-server on loopback).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawnBalancer } from "../../src/process/balancer.ts"
import { untilAnswers } from "../../src/process/wait.ts"
import { startRedis } from "../support/redis.ts"
import { formatTable, median } from "./report.ts"
import type { Target } from "./targets.ts"

/** High enough never to refuse a request in a benchmark. */
const NEVER_REACHED_RATE = "1000000000/s"
const NEVER_REACHED_CAP = 1_000_000

/** A limit is cheap enough when the limited route keeps this share of the plain route's throughput. */
const GOAL_RATIO = 0.97

/** Each limited route, and the plain route of the same process it is compared with. */
const PAIRS = [
  ["memory /cap", "memory /plain"],
  ["memory /rate", "memory /plain"],
  ["redis /rate", "redis /plain"],
] as const

const routesYaml = (origins: ReadonlyArray<string>, limited: Record<string, string>) => {
  const replicas = `[${origins.join(", ")}]`
  const routes = Object.entries({ plain: "", ...limited }).map(
    ([name, settings]) =>
      `  - name: ${name}\n    rule: PathPrefix(\`/${name}\`)\n    replicas: ${replicas}\n${settings}`,
  )
  return `routes:\n${routes.join("")}`
}

const startLimited = async (
  process: string,
  origins: ReadonlyArray<string>,
  limited: Record<string, string>,
  env: Record<string, string>,
  folder: string,
): Promise<Array<Target>> => {
  const file = join(folder, `${process}.yml`)
  writeFileSync(file, routesYaml(origins, limited))
  const child = await spawnBalancer(
    { LB_ROUTES_FILE: file, LB_ALGORITHM: "lease", ...env },
    { name: `balancer (${process})`, readyTimeoutMs: 60_000 },
  )
  return Promise.all(
    ["plain", ...Object.keys(limited)].map(async (route) => {
      const url = `${child.url}/${route}/`
      await untilAnswers(child, url, 60_000)
      // Only one target per process reads the balancer's /metrics at the end.
      return { name: `${process} /${route}`, url, balancer: route === "plain", pid: child.pid }
    }),
  )
}

/** The two balancers and their routes as targets; `stop` ends Redis and the routes files. */
export const startLimitTargets = async (origins: ReadonlyArray<string>) => {
  const folder = mkdtempSync(join(tmpdir(), "swarmguard-bench-"))
  const redis = await startRedis()
  const rate = `    rate-limit: ${NEVER_REACHED_RATE}\n`
  const targets = [
    ...(await startLimited(
      "memory",
      origins,
      { cap: `    max-requests: ${NEVER_REACHED_CAP}\n`, rate },
      {},
      folder,
    )),
    ...(await startLimited("redis", origins, { rate }, { RATE_LIMIT_REDIS_URL: redis.url }, folder)),
  ]
  const stop = async () => {
    await redis.stop()
    rmSync(folder, { recursive: true, force: true })
  }
  return { targets, stop }
}

interface RoundFigures {
  readonly requestsPerSecond: number
  readonly p99Ms: number
  readonly errors: number
  readonly non2xx: number
}

const fmt = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "-")

/**
 * Per limited route, the per-round ratio of its throughput to its plain route's and the p99 it adds.
 * The verdict is on the range of the ratios: PASS when every round is at or above the goal, MISS
 * when none is, inconclusive when the rounds straddle it. Redis's cost is reported, not judged.
 */
export const printLimitCosts = (results: ReadonlyMap<string, ReadonlyArray<RoundFigures>>) => {
  const rows = PAIRS.flatMap(([name, baseName]) => {
    const rounds = results.get(name)
    const base = results.get(baseName)
    if (rounds === undefined || base === undefined) return []
    const ratios = rounds.map((m, i) => m.requestsPerSecond / base[i]!.requestsPerSecond)
    const addedP99 = rounds.map((m, i) => m.p99Ms - base[i]!.p99Ms)
    const low = Math.min(...ratios)
    const high = Math.max(...ratios)
    const verdict = low >= GOAL_RATIO ? "PASS" : high < GOAL_RATIO ? "MISS" : "inconclusive"
    return [
      [
        name,
        fmt(median(rounds.map((m) => m.requestsPerSecond)), 0),
        fmt(median(ratios), 3),
        `${fmt(low, 3)}–${fmt(high, 3)}`,
        fmt(median(addedP99), 2),
        String(rounds.reduce((sum, m) => sum + m.errors + m.non2xx, 0)),
        name.startsWith("redis") ? "(reported)" : verdict,
      ],
    ]
  })
  if (rows.length === 0) return
  console.log(
    "\nWhat a limit costs when never reached: each limited route against the plain route of the same " +
      "process, round by round",
  )
  console.log(
    formatTable(
      ["target", "req/s", "×plain", "range", "added p99 ms", "errors", `goal ≥${GOAL_RATIO}`],
      rows,
    ),
  )
}
