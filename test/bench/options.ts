/** The benchmark's flags, each with an environment fallback and a default that keeps a run under ~3 minutes. */
import { parseArgs } from "node:util"
import { ALGORITHMS, type Algorithm } from "../../src/domain/Algorithm.ts"

export interface Options {
  readonly rounds: number
  readonly durationS: number
  readonly warmupS: number
  readonly connections: number
  readonly only: "http" | "routing" | undefined
  readonly picks: number
  /** The balancers' algorithms to measure; all of them by default. */
  readonly algorithms: ReadonlyArray<Algorithm>
  /** Extra variables for the balancers, for experiments; none by default, so they run on defaults. */
  readonly lbEnv: Record<string, string>
  /** Also measure what each limit costs, set but never reached (limits.ts). */
  readonly limits: boolean
  /** `LB_WORKERS` values: each algorithm's balancer runs once with each. */
  readonly workers: ReadonlyArray<number>
}

const USAGE = `usage: npm run bench:proxy -- [options]
  --rounds N        rounds over all targets (BENCH_ROUNDS, default 3)
  --duration S      seconds measured per target and round (BENCH_DURATION, default 5)
  --warmup S        seconds of warm-up before each measurement (BENCH_WARMUP, default 1)
  --connections N   autocannon connections (BENCH_CONNECTIONS, default 50)
  --only WHAT       http | routing: run only that part
  --algorithms A,B  balancers to measure (default: every algorithm; none: only the other targets)
  --picks N         timed picks per routing case (BENCH_PICKS, default 20000)
  --lb-env K=V      extra environment for the balancers (repeatable), e.g. LOG_EVERY_N_REQUESTS=0
  --workers N,M     LB_WORKERS of the balancers: each algorithm once per value (default 1); a
                    balancer with N > 1 is named "<algorithm> ×N"
  --limits          also two balancers with routes that each set one limit, never reached (a cap, a
                    rate limit in memory, one in Redis: starts Debian's redis-server), each compared
                    with a plain route of the same process`

const number = (name: string, given: string | undefined, fallback: string, min: number): number => {
  const value = Number(given ?? process.env[`BENCH_${name.toUpperCase()}`] ?? fallback)
  if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number ≥ ${min}\n${USAGE}`)
  return value
}

export const parseOptions = (argv: ReadonlyArray<string>): Options | undefined => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      rounds: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      connections: { type: "string" },
      only: { type: "string" },
      picks: { type: "string" },
      algorithms: { type: "string" },
      "lb-env": { type: "string", multiple: true },
      limits: { type: "boolean" },
      workers: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  })
  if (values.help) {
    console.log(USAGE)
    return undefined
  }
  const only = values.only
  if (only !== undefined && only !== "http" && only !== "routing") {
    throw new Error(`--only takes http or routing, not ${only}\n${USAGE}`)
  }
  const lbEnv: Record<string, string> = {}
  for (const pair of values["lb-env"] ?? []) {
    const eq = pair.indexOf("=")
    if (eq <= 0) throw new Error(`--lb-env takes NAME=VALUE, not ${pair}\n${USAGE}`)
    lbEnv[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  const limits = values.limits ?? false
  const workers = (values.workers ?? "1").split(",").map((text) => Number(text.trim()))
  if (workers.some((count) => !Number.isInteger(count) || count < 1)) {
    throw new Error(`--workers takes whole numbers ≥ 1, not ${values.workers}\n${USAGE}`)
  }
  const given = values.algorithms ?? ALGORITHMS.join(",")
  const algorithms = given === "none" ? [] : given.split(",").map((name) => name.trim())
  const unknown = algorithms.filter((name) => !(ALGORITHMS as ReadonlyArray<string>).includes(name))
  if (unknown.length > 0) throw new Error(`--algorithms: unknown ${unknown.join(", ")}\n${USAGE}`)
  return {
    algorithms: algorithms as Array<Algorithm>,
    rounds: Math.floor(number("rounds", values.rounds, "3", 1)),
    durationS: number("duration", values.duration, "5", 0.5),
    warmupS: number("warmup", values.warmup, "1", 0),
    connections: Math.floor(number("connections", values.connections, "50", 1)),
    only,
    picks: Math.floor(number("picks", values.picks, "20000", 100)),
    lbEnv,
    limits,
    workers,
  }
}
