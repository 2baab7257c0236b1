/**
 * Whether each endpoint is healthy (`Endpoint.health`): active `GET /health` probes with rise/fall
 * thresholds, plus passive marks from the data plane's connection errors.
 */
import { Context } from "effect"
import type { Endpoint } from "./Endpoint.ts"

export interface HealthProbeShape {
  /** A connection to the endpoint failed while proxying: counts like a failed probe. */
  readonly reportFailure: (endpoint: Endpoint, reason: string) => void
}

export class HealthProbe extends Context.Tag("swarmguard/HealthProbe")<HealthProbe, HealthProbeShape>() {}
