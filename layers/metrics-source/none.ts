/** No metrics: static replicas without agents. Metrics-based algorithms then use their fallback. */
import { Layer } from "effect"
import { MetricsSource } from "../../src/MetricsSource.ts"

export const layer = Layer.succeed(MetricsSource, {
  get: () => undefined,
  version: () => 0,
  pollFailures: () => ({}),
})
