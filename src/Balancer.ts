/** The balancer composed from the layers that `LB_ALGORITHM` and the discovery settings call for. */
import { Effect, Layer } from "effect"
import { layer as adminLayer } from "../layers/admin/http.ts"
import { layer as agentReportsLayer } from "../layers/agent-reports/http.ts"
import { layer as agentDiscoveryLayer } from "../layers/discovery/agents.ts"
import { layer as staticDiscoveryLayer } from "../layers/discovery/static.ts"
import { layer as httpHealthLayer } from "../layers/health-probe/http.ts"
import { layer as memoryLeaseLayer } from "../layers/lease-store/memory.ts"
import { layer as agentMetricsLayer } from "../layers/metrics-source/agents.ts"
import { layer as noMetricsLayer } from "../layers/metrics-source/none.ts"
import { layer as consecutiveOutliersLayer } from "../layers/outlier-detector/consecutive.ts"
import { layer as proxyLayer } from "../layers/proxy/node-undici.ts"
import { selectorLayers } from "../layers/selector/registry.ts"
import { LbConfig } from "./Config.ts"
import { ReplicaPool } from "./ReplicaPool.ts"
import { Router } from "./Router.ts"
import { RoutingStats } from "./RoutingStats.ts"

/** Static `REPLICAS` replace the agents for discovery; then there are no metrics to read either. */
const sourcesLayer = Layer.unwrapEffect(
  Effect.map(LbConfig, (config) =>
    config.replicas.length > 0
      ? Layer.merge(staticDiscoveryLayer, noMetricsLayer)
      : Layer.merge(agentDiscoveryLayer, agentMetricsLayer).pipe(Layer.provide(agentReportsLayer)),
  ),
)

const selectorLayer = Layer.unwrapEffect(Effect.map(LbConfig, (config) => selectorLayers[config.algorithm]))

/**
 * The whole balancer, given its configuration and an HTTP client for the control plane: the sources
 * feed the replica pool; the rules that read and write its endpoints (health, ejection, leases, stats,
 * the selector) sit on it; the router combines them per request; the data plane and the admin views
 * are on top.
 */
export const BalancerLayer = proxyLayer.pipe(
  Layer.provideMerge(Layer.merge(Router.layer, adminLayer)),
  Layer.provideMerge(
    Layer.mergeAll(
      httpHealthLayer,
      consecutiveOutliersLayer,
      memoryLeaseLayer,
      RoutingStats.layer,
      selectorLayer,
    ),
  ),
  Layer.provideMerge(ReplicaPool.layer),
  Layer.provideMerge(sourcesLayer),
)
