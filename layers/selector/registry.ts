/**
 * Every routing algorithm's Selector layer, by the name `LB_ALGORITHM` gives it. The balancer provides
 * the one configured; the selector tests and the routing benchmark run them all from here.
 * docs/ARCHITECTURE.md, "How to add an algorithm", says what else a new one needs.
 */
import type { Layer } from "effect"
import type { LbConfig } from "../../src/Config.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Selector } from "../../src/Selector.ts"
import { layer as adaptive } from "./adaptive.ts"
import { layer as hybrid } from "./hybrid.ts"
import { layer as lease } from "./lease.ts"
import { layer as metrics } from "./metrics.ts"
import { layer as roundRobin } from "./round-robin.ts"

export const selectorLayers: Record<Algorithm, Layer.Layer<Selector, never, LbConfig>> = {
  lease,
  metrics,
  hybrid,
  "round-robin": roundRobin,
  adaptive,
}
