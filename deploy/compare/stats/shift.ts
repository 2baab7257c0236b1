/** How quickly a contender moved load off a replica that changed partway through a round. */
import type { ScenarioChange, ShiftTime } from "../report/Report.ts"
import { type Bootstrapped, bootstrapMedian, percentileInterval } from "./bootstrap.ts"
import { seedOf } from "./random.ts"

export interface RoundShift {
  /** Seconds from the change to the start of the first window in which the replica's share is below fair. */
  readonly seconds: number
  /** False when no window after the change had it below: `seconds` is then the rest of the round. */
  readonly shifted: boolean
}

type Windows = ReadonlyArray<Record<string, number>>

/** One round's shift time, from its one-second windows of requests per replica. */
export const roundShift = (perSecond: Windows, change: ScenarioChange): RoundShift => {
  for (let second = Math.ceil(change.at_s); second < perSecond.length; second++) {
    const window = perSecond[second]!
    const answered = Object.values(window).reduce((a, b) => a + b, 0)
    // A window without answers shows nothing about the split.
    if (answered === 0) continue
    if ((window[change.replica] ?? 0) / answered < change.fair_share_after)
      return { seconds: second - change.at_s, shifted: true }
  }
  return { seconds: Math.max(0, perSecond.length - change.at_s), shifted: false }
}

/** Median shift time over the rounds, bootstrapped over rounds drawn with replacement. */
export const bootstrapShift = (
  rounds: ReadonlyArray<{ readonly per_second: Windows }>,
  change: ScenarioChange,
  seedName: string,
): { readonly median: Bootstrapped; readonly rounds: ReadonlyArray<RoundShift> } => {
  const shifts = rounds.map((round) => roundShift(round.per_second, change))
  const median = bootstrapMedian(
    shifts.map((shift) => shift.seconds),
    { seed: seedOf(`${seedName}/shift`) },
  )
  return { median, rounds: shifts }
}

/** The row's shift time as the report shows it. */
export const shiftTime = (
  rounds: ReadonlyArray<{ readonly per_second: Windows }>,
  change: ScenarioChange,
  seedName: string,
): ShiftTime => {
  const shift = bootstrapShift(rounds, change, seedName)
  return {
    median_s: shift.median.point,
    ci_s: percentileInterval(shift.median.replicates),
    per_round_s: shift.rounds.map((round) => round.seconds),
    unshifted_rounds: shift.rounds.filter((round) => !round.shifted).length,
  }
}
