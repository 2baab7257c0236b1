/**
 * Passive outlier ejection, as Envoy's `consecutive_5xx`/`consecutive_gateway_failure`: the data plane
 * reports how each exchange with an endpoint ended, and one failing too many in a row is taken out of
 * rotation for a while (`Endpoint.ejection`), longer each time it is ejected again. Health probes only
 * see `/health`; this sees the traffic itself, so a replica that answers its probe but fails requests
 * still leaves.
 */
import { Context } from "effect"
import type { Endpoint } from "./Endpoint.ts"

/** Why an exchange failed: the connection, a reset before the answer, a timeout, or a 5xx answer. */
export type ExchangeFailure = "connect" | "reset" | "timeout" | "5xx"

export interface OutlierDetectorShape {
  /** An exchange succeeded; synchronous, it runs for every response. */
  readonly reportSuccess: (endpoint: Endpoint) => void
  readonly reportFailure: (endpoint: Endpoint, failure: ExchangeFailure) => void
  /** Every ejection since start. */
  readonly totalEjections: () => number
}

export class OutlierDetector extends Context.Tag("swarmguard/OutlierDetector")<
  OutlierDetector,
  OutlierDetectorShape
>() {}
