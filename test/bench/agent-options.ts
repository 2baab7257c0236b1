/** The flags of `npm run bench:agent`, with defaults that keep a run under ~3 minutes. */
import { parseArgs } from "node:util"

export interface AgentBenchOptions {
  /** Running containers per measurement, ascending, so the fleet only ever grows. */
  readonly counts: ReadonlyArray<number>
  readonly rounds: number
  /** Seconds of the polled window: the agent's CPU and the served samples' age. */
  readonly windowS: number
  readonly warmupS: number
  /** Seconds before the polled window with no request at all: what sampling alone costs. */
  readonly quietS: number
  /** Where V8 CPU profiles of each run's quiet and polled phases go; none when undefined. */
  readonly cpuProfDir: string | undefined
}

const USAGE = `usage: npm run bench:agent -- [options]
  --counts N,N,...  running containers per measurement (default 1,10,50)
  --rounds N        measurements per count; medians are printed when N > 1 (default 1)
  --window S        seconds measured while polling the agent every 250 ms (default 20)
  --warmup S        seconds after the agent's first sample before measuring (default 5)
  --quiet S         seconds measured with no requests, before the window; 0 skips it (default 5)
  --cpu-prof DIR    write V8 CPU profiles of the agent's quiet and polled phases into DIR`

/** Bounded so that a typo cannot start thousands of containers on a shared Engine. */
const MAX_CONTAINERS = 200

const number = (name: string, given: string | undefined, fallback: string, min: number): number => {
  const value = Number(given ?? fallback)
  if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number ≥ ${min}\n${USAGE}`)
  return value
}

const counts = (given: string | undefined): Array<number> => {
  const values = (given ?? "1,10,50").split(",").map((part) => Number(part.trim()))
  if (values.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_CONTAINERS)) {
    throw new Error(`--counts takes integers from 1 to ${MAX_CONTAINERS}, not ${given}\n${USAGE}`)
  }
  return [...new Set(values)].sort((a, b) => a - b)
}

export const parseAgentOptions = (argv: ReadonlyArray<string>): AgentBenchOptions | undefined => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      counts: { type: "string" },
      rounds: { type: "string" },
      window: { type: "string" },
      warmup: { type: "string" },
      quiet: { type: "string" },
      "cpu-prof": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  })
  if (values.help) {
    console.log(USAGE)
    return undefined
  }
  return {
    counts: counts(values.counts),
    rounds: Math.floor(number("rounds", values.rounds, "1", 1)),
    windowS: number("window", values.window, "20", 1),
    warmupS: number("warmup", values.warmup, "5", 0),
    quietS: number("quiet", values.quiet, "5", 0),
    cpuProfDir: values["cpu-prof"],
  }
}
