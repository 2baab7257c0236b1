/**
 * The machinery of the metrics-based selectors (`metrics`, `hybrid`): load scores from the agents'
 * metrics, made usable despite their age, and the staleness fallback.
 *
 * A score describes the load of the replica's last sample interval, and is up to `CACHE_TTL` old.
 * Sending every request of the next second to the replica that looked least loaded is the classic
 * herd (Mitzenmacher, "How useful is old information?"). So each score is projected: the replica's
 * cost per request (its score over the requests it was sent in the previous interval) times the
 * requests sent since the sample, minus those of the previous interval. At steady state this
 * equalises the scores themselves, so a replica with a quarter of the CPU gets a quarter of the
 * work. As a last guard, no replica takes more than twice the mean count within one interval.
 */
import { Effect } from "effect"
import { LbConfig } from "../../src/Config.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { type Choice, type Decision, ignoreExchanges, type SelectorShape } from "../../src/Selector.ts"
import { loadScore } from "../../src/score.ts"
import { argminFrom, makeRotation } from "./rotation.ts"

/** Below this score, differences between replicas are sampling noise, not load. */
const SCORE_FLOOR = 5

/** What the selector keeps on each endpoint (`Endpoint.selection`) about its latest sample. */
interface SampleTrack {
  sampledAt: number
  sentSinceSample: number
  sentInPreviousInterval: number
}

export interface ScoredSelectorOptions {
  readonly algorithm: Algorithm
  /** Added to every metrics score; `hybrid` charges active leases here. */
  readonly extraScore: (endpoint: Endpoint) => number
  /**
   * Chooses (an index) when some candidate has no fresh metrics and `FALLBACK_ENABLED` is on; `start`
   * is the next endpoint in rotation.
   */
  readonly fallback: (choice: Choice, start: number) => number
}

const trackOf = (endpoint: Endpoint) => endpoint.selection as SampleTrack | undefined

export const makeScoredSelector = (options: ScoredSelectorOptions) =>
  Effect.gen(function* () {
    const config = yield* LbConfig
    const clock = yield* Effect.clock
    const rotation = makeRotation()
    // Reused across picks: the data plane should not allocate per candidate.
    const scores: Array<number> = []

    /** The raw load score, or NaN when the replica's metrics are missing or too old. */
    const rawScoreOf = (endpoint: Endpoint, now: number): number => {
      const sample = endpoint.metrics
      if (sample === undefined || now - sample.sampledAt > config.metricsMaxAgeMs) return Number.NaN
      const track = trackOf(endpoint)
      if (track === undefined) {
        const fresh: SampleTrack = {
          sampledAt: sample.sampledAt,
          sentSinceSample: 0,
          sentInPreviousInterval: 0,
        }
        endpoint.selection = fresh
      } else if (track.sampledAt !== sample.sampledAt) {
        track.sentInPreviousInterval = track.sentSinceSample
        track.sentSinceSample = 0
        track.sampledAt = sample.sampledAt
      }
      return loadScore(sample, config)
    }

    /** Projects every candidate's score to now (see the top of this file) into `scores`. */
    const project = ({ endpoints: candidates, uniform }: Choice) => {
      const count = candidates.length
      // Replicas sent nothing last interval have no cost estimate: they borrow the others' mean
      // (or, when none has one, a whole mean score per request, which keeps the first interval
      // close to a rotation).
      let costSum = 0
      let costCount = 0
      let flooredSum = 0
      for (let i = 0; i < count; i++) {
        const floored = Math.max(scores[i]!, SCORE_FLOOR)
        flooredSum += floored
        const previous = trackOf(candidates[i]!)!.sentInPreviousInterval
        if (previous > 0) {
          costSum += floored / previous
          costCount++
        }
      }
      const borrowedCost = costCount > 0 ? costSum / costCount : flooredSum / count
      let sentSum = 0
      for (let i = 0; i < count; i++) sentSum += trackOf(candidates[i]!)!.sentSinceSample
      const herdLimit = (2 * sentSum) / count + 1
      for (let i = 0; i < count; i++) {
        const endpoint = candidates[i]!
        const track = trackOf(endpoint)!
        if (track.sentSinceSample >= herdLimit) {
          scores[i] = Number.POSITIVE_INFINITY
          continue
        }
        const previous = track.sentInPreviousInterval
        const cost = previous > 0 ? Math.max(scores[i]!, SCORE_FLOOR) / previous : borrowedCost
        const score = scores[i]! + cost * (track.sentSinceSample - previous) + options.extraScore(endpoint)
        // A heavier endpoint takes more load for the same score, as if it were several.
        scores[i] = uniform ? score : score / endpoint.effectiveWeight
      }
    }

    const decide = (endpoint: Endpoint, score: number | undefined, fresh: boolean): Decision => {
      const track = trackOf(endpoint)
      if (track !== undefined) track.sentSinceSample++
      return { endpoint, score, freshMetrics: fresh, fallback: !fresh }
    }

    const pick = (choice: Choice): Decision | undefined => {
      const candidates = choice.endpoints
      const now = clock.unsafeCurrentTimeMillis()
      const count = candidates.length
      let fresh = 0
      for (let i = 0; i < count; i++) {
        scores[i] = rawScoreOf(candidates[i]!, now)
        if (!Number.isNaN(scores[i]!)) fresh++
      }
      if (fresh === count) {
        project(choice)
        const best = argminFrom(count, rotation(choice), (i) => scores[i]!)
        return decide(candidates[best]!, scores[best], true)
      }
      if (config.fallbackEnabled) {
        return decide(candidates[options.fallback(choice, rotation(choice))]!, undefined, false)
      }
      if (fresh === 0) return undefined
      // Without fallback only replicas with fresh metrics are eligible.
      const eligible = candidates.filter((_, i) => !Number.isNaN(scores[i]!))
      return pick({ endpoints: eligible, uniform: choice.uniform })
    }

    const selector: SelectorShape = { algorithm: options.algorithm, pick, observe: ignoreExchanges }
    return selector
  })
