/**
 * What a scenario does to the replicas during one round, beyond their allowances: background stress,
 * a share of failing answers, a CPU hog beside one of them, an allowance that drops halfway. All of
 * it is set before the round's warm-up (so a balancer may learn it) and undone after the round, so
 * the next contender starts from the same cluster.
 */
import type { ScenarioChange } from "./report/Report.ts"
import type { ScenarioSpec } from "./scenarios.ts"
import type { ComparisonTarget } from "./target.ts"

export interface RoundConditions {
  /** Call when the counted part starts: a mid-run change is timed from it. */
  readonly measuring: () => void
  /** Each replica's allowance over the measured window, in cores (time-weighted across a change). */
  readonly cores: () => Record<string, number>
  /** What was actually set up, where the target had to improvise (the neighbour). */
  readonly note: string | undefined
  readonly undo: () => Promise<void>
}

/** The scenario's mid-run change as the report states it, for a measured window of `durationS`. */
export const describeChange = (
  target: ComparisonTarget,
  scenario: ScenarioSpec,
  durationS: number,
): ScenarioChange | undefined => {
  const change = scenario.change
  if (change === undefined) return undefined
  const after = target.replicas.map((name) =>
    name === change.replica ? change.fraction : (scenario.capacity[name] ?? 1),
  )
  return {
    at_s: durationS / 2,
    replica: change.replica,
    fair_share_after: Math.round((change.fraction / after.reduce((a, b) => a + b, 0)) * 10_000) / 10_000,
  }
}

export const applyConditions = async (
  target: ComparisonTarget,
  scenario: ScenarioSpec,
  warmupS: number,
  durationS: number,
): Promise<RoundConditions> => {
  const seconds = Math.ceil(warmupS + durationS)
  const { fault, neighbour: hog, change } = scenario
  if (fault !== undefined) await target.setErrorShare(fault.replica, fault.errorShare)
  const neighbour = hog === undefined ? undefined : await target.neighbour?.(hog.replica, hog.weight)
  const stopStress = scenario.stress
    ? await target.stress(scenario.stress.replica, scenario.stress.finalCpuPercent / seconds, seconds)
    : async () => {}

  const coresBefore = Object.fromEntries(target.replicas.map((name) => [name, target.cores(name)]))
  let timer: ReturnType<typeof setTimeout> | undefined
  let changed: Promise<void> | undefined
  const restoredFraction = change === undefined ? 1 : (scenario.capacity[change.replica] ?? 1)

  return {
    measuring: () => {
      if (change === undefined) return
      timer = setTimeout(
        () => {
          changed = target.setCapacity(change.replica, change.fraction)
        },
        (durationS / 2) * 1000,
      )
    },
    cores: () => {
      if (change === undefined) return coresBefore
      const before = coresBefore[change.replica]!
      const after = before * (change.fraction / restoredFraction)
      return { ...coresBefore, [change.replica]: (before + after) / 2 }
    },
    note: neighbour?.note,
    undo: async () => {
      clearTimeout(timer)
      await stopStress()
      await neighbour?.stop()
      if (fault !== undefined) await target.setErrorShare(fault.replica, 0)
      if (change !== undefined) {
        await changed
        await target.setCapacity(change.replica, restoredFraction)
      }
    },
  }
}
