/** The balancer's entry point: reads the environment, runs the balancer until a signal stops it. */
import cluster from "node:cluster"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer } from "effect"
import { layer as clusterWorkerPeers } from "../layers/peers/cluster-worker.ts"
import { layer as singlePeers } from "../layers/peers/single.ts"
import { ListenFailed } from "../layers/proxy/node-undici.ts"
import { ServicesUnavailable } from "../layers/route-source/swarm-labels.ts"
import { BalancerLayer } from "./Balancer.ts"
import { LbConfig } from "./Config.ts"
import { ConfigInvalid } from "./domain/ConfigInvalid.ts"
import { launch } from "./launch.ts"
import type { Peers } from "./Peers.ts"
import { RoutesFileInvalid } from "./routes/routes-file.ts"
import { primaryLayer } from "./workers/primary.ts"

const balancer = (peers: Layer.Layer<Peers>) =>
  BalancerLayer.pipe(Layer.provide(peers), Layer.provide(NodeHttpClient.layer))

if (cluster.isWorker) {
  // The primary passes SIGTERM on, and a terminal's Ctrl-C reaches every process of the group: the
  // first signal starts this worker's drain, and a second must not cut it short (the primary keeps
  // the deadline, and kills a worker that overstays it).
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => {})
}

/** With LB_WORKERS > 1 this process is the primary, and each worker runs the balancer. */
const program = cluster.isWorker
  ? balancer(clusterWorkerPeers).pipe(Layer.annotateLogs({ worker: cluster.worker?.id }))
  : Layer.unwrapEffect(
      Effect.map(LbConfig, (config) => (config.workers > 1 ? primaryLayer : balancer(singlePeers))),
    )

launch("swarmguard-lb", program.pipe(Layer.provide(LbConfig.layer)), [
  ConfigInvalid,
  ListenFailed,
  RoutesFileInvalid,
  ServicesUnavailable,
])
