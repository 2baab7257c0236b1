/**
 * Picks one endpoint for a request. One layer per algorithm (`layers/selector/registry.ts` names
 * them); the balancer provides the one `LB_ALGORITHM` names. `pick` and `observe` are synchronous:
 * they run on the data plane for every request.
 */
import { Context } from "effect"
import type { Algorithm } from "./domain/Algorithm.ts"
import type { Endpoint } from "./Endpoint.ts"
import type { Candidates } from "./ReplicaPool.ts"

export interface Decision {
  readonly endpoint: Endpoint
  /** The score the choice was made on, for algorithms that score. */
  readonly score: number | undefined
  /** Whether fresh metrics were used: undefined for algorithms that do not read metrics. */
  readonly freshMetrics: boolean | undefined
  /** The algorithm could not apply (metrics missing or stale) and its fallback chose. */
  readonly fallback: boolean
}

/** What a selector chooses among: endpoints, and whether their effective weights are all equal. */
export type Choice = Pick<Candidates, "endpoints" | "uniform">

export interface SelectorShape {
  readonly algorithm: Algorithm
  /**
   * Chooses among `choice.endpoints` (never empty), in proportion to their effective weights where
   * those differ. Undefined only when the algorithm refuses every candidate, i.e. metrics are stale
   * and `FALLBACK_ENABLED=false`.
   */
  readonly pick: (choice: Choice) => Decision | undefined
  /**
   * How an exchange with an endpoint ended: its duration from dispatch to the end of the response or
   * the error, and whether it succeeded (a response below 500). Exchanges the client abandoned are
   * not reported: they say nothing about the replica.
   */
  readonly observe: (endpoint: Endpoint, durationMs: number, ok: boolean) => void
}

/** `observe` for the algorithms that do not learn from the exchanges they route. */
export const ignoreExchanges: SelectorShape["observe"] = () => {}

export class Selector extends Context.Tag("swarmguard/Selector")<Selector, SelectorShape>() {}
