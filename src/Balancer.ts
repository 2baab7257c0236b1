/** The balancer composed from the layers that `LB_ALGORITHM` and the discovery settings call for. */
import { Effect, Layer } from "effect"
import { layer as agentReportsLayer } from "../layers/agent-reports/http.ts"
import { layer as agentDiscoveryLayer } from "../layers/discovery/agents.ts"
import { layer as staticDiscoveryLayer } from "../layers/discovery/static.ts"
import { layer as httpHealthLayer } from "../layers/health-probe/http.ts"
import { layer as memoryLeaseLayer } from "../layers/lease-store/memory.ts"
import { layer as agentMetricsLayer } from "../layers/metrics-source/agents.ts"
import { layer as noMetricsLayer } from "../layers/metrics-source/none.ts"
import { layer as consecutiveOutliersLayer } from "../layers/outlier-detector/consecutive.ts"
import { layer as proxyLayer } from "../layers/proxy/node-undici.ts"
import { layer as adaptiveLayer } from "../layers/selector/adaptive.ts"
import { layer as hybridLayer } from "../layers/selector/hybrid.ts"
import { layer as leaseLayer } from "../layers/selector/lease.ts"
import { layer as metricsLayer } from "../layers/selector/metrics.ts"
import { layer as roundRobinLayer } from "../layers/selector/round-robin.ts"
import { LbConfig } from "./Config.ts"
import type { Algorithm } from "./domain/Algorithm.ts"
import { ReplicaPool } from "./ReplicaPool.ts"
import { RoutingStats } from "./RoutingStats.ts"

const selectorLayers = {
  lease: leaseLayer,
  metrics: metricsLayer,
  hybrid: hybridLayer,
  "round-robin": roundRobinLayer,
  adaptive: adaptiveLayer,
} satisfies Record<Algorithm, unknown>

/** Static `REPLICAS` replace the agents for discovery; then there are no metrics to read either. */
const sourcesLayer = Layer.unwrapEffect(
  Effect.map(LbConfig, (config) =>
    config.replicas.length > 0
      ? Layer.merge(staticDiscoveryLayer, noMetricsLayer)
      : Layer.merge(agentDiscoveryLayer, agentMetricsLayer).pipe(Layer.provide(agentReportsLayer)),
  ),
)

const selectorLayer = Layer.unwrapEffect(Effect.map(LbConfig, (config) => selectorLayers[config.algorithm]))

/** The whole balancer, given its configuration and an HTTP client for the control plane. */
export const BalancerLayer = proxyLayer.pipe(
  Layer.provideMerge(selectorLayer),
  Layer.provideMerge(ReplicaPool.layer),
  Layer.provideMerge(Layer.merge(httpHealthLayer, consecutiveOutliersLayer)),
  Layer.provideMerge(Layer.mergeAll(sourcesLayer, memoryLeaseLayer, RoutingStats.layer)),
)
