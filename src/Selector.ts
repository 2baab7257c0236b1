/**
 * Picks one replica for a request. One layer per algorithm; `main` provides the one `LB_ALGORITHM`
 * names. `pick` is synchronous: it runs on the data plane for every request.
 */
import { Context } from "effect"
import type { Algorithm } from "./domain/Algorithm.ts"
import type { Replica } from "./domain/Replica.ts"

export interface Decision {
  readonly replica: Replica
  /** The score the choice was made on, for algorithms that score. */
  readonly score: number | undefined
  /** Whether fresh metrics were used: undefined for algorithms that do not read metrics. */
  readonly freshMetrics: boolean | undefined
  /** The algorithm could not apply (metrics missing or stale) and its fallback chose. */
  readonly fallback: boolean
}

export interface SelectorShape {
  readonly algorithm: Algorithm
  /**
   * Chooses among `candidates` (never empty). Undefined only when the algorithm refuses every
   * candidate, i.e. metrics are stale and `FALLBACK_ENABLED=false`.
   */
  readonly pick: (candidates: ReadonlyArray<Replica>) => Decision | undefined
}

export class Selector extends Context.Tag("swarmguard/Selector")<Selector, SelectorShape>() {}
