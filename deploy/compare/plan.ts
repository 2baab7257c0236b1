/**
 * How much of the comparison a run does. `npm run demo` runs in CI and must take about five minutes,
 * so it runs every scenario once with the contenders the goals compare (adaptive, round-robin and the
 * references) in short rounds; `--precise` runs them long enough that the intervals decide the goals.
 * Any of it can be overridden on the command line.
 */
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { CompareOptions } from "./run.ts"
import { SCENARIOS } from "./scenarios.ts"
import { STACK_WARM_UP_S } from "./warm-up.ts"

interface Preset {
  readonly name: string
  readonly rounds: number
  readonly durationS: number
  readonly warmupS: number
  readonly algorithms: ReadonlyArray<Algorithm>
}

export const DEMO: Preset = {
  name: "demo",
  rounds: 1,
  durationS: 3,
  warmupS: 1,
  algorithms: ["adaptive", "round-robin"],
}

export const PRECISE: Preset = {
  name: "precise",
  rounds: 6,
  durationS: 10,
  warmupS: 2,
  algorithms: ["adaptive", "round-robin"],
}

/** What a round costs beyond its load: settling, the /health burst, the last answers, the bookkeeping. */
const ROUND_OVERHEAD_S = 1.5
/** Starting the cluster and measuring the replicas' capacity, roughly. */
const START_S = 25

export interface Given {
  readonly precise: boolean
  readonly rounds: number | undefined
  readonly durationS: number | undefined
  readonly warmupS: number | undefined
  readonly algorithms: ReadonlyArray<Algorithm> | undefined
  readonly scenarios: ReadonlyArray<string> | undefined
  readonly loadReports: boolean
}

export interface Plan {
  readonly preset: string
  readonly algorithms: ReadonlyArray<Algorithm>
  readonly options: CompareOptions
}

export const resolvePlan = (given: Given): Plan => {
  const preset = given.precise ? PRECISE : DEMO
  return {
    preset: preset.name,
    algorithms: given.algorithms ?? preset.algorithms,
    options: {
      rounds: given.rounds ?? preset.rounds,
      durationS: given.durationS ?? preset.durationS,
      warmupS: given.warmupS ?? preset.warmupS,
      scenarios: given.scenarios ?? SCENARIOS.map((scenario) => scenario.name),
      loadReports: given.loadReports,
    },
  }
}

/** Seconds a plan takes with `contenders` contenders, estimated from what a round costs. */
export const estimateS = (options: CompareOptions, contenders: number): number => {
  const round = options.warmupS + options.durationS + ROUND_OVERHEAD_S
  const warmUps = (1 + (options.scenarios.includes("two-balancers") ? 1 : 0)) * contenders * STACK_WARM_UP_S
  return START_S + warmUps + options.scenarios.length * contenders * options.rounds * round
}

/** One line for the console: what runs, and about how long it takes. */
export const describePlan = (plan: Plan, contenders: ReadonlyArray<{ readonly name: string }>): string => {
  const { options } = plan
  const names = contenders.map((contender) => contender.name)
  const minutes = estimateS(options, contenders.length) / 60
  return (
    `${plan.preset}: ${options.scenarios.length} scenarios (${options.scenarios.join(", ")}) × ` +
    `${names.length} contenders (${names.join(", ")}) × ${options.rounds} round(s) of ` +
    `${options.durationS} s + ${options.warmupS} s warm-up; about ${minutes.toFixed(0)} min` +
    `; load reports ${options.loadReports ? "on" : "off"}`
  )
}
