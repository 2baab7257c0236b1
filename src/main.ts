/** The balancer's entry point: reads the environment, runs the balancer until a signal stops it. */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Layer } from "effect"
import { ListenFailed } from "../layers/proxy/node-undici.ts"
import { ServicesUnavailable } from "../layers/route-source/swarm-labels.ts"
import { BalancerLayer } from "./Balancer.ts"
import { LbConfig } from "./Config.ts"
import { ConfigInvalid } from "./domain/ConfigInvalid.ts"
import { launch } from "./launch.ts"
import { RoutesFileInvalid } from "./routes/routes-file.ts"

launch(
  "swarmguard-lb",
  BalancerLayer.pipe(Layer.provide(NodeHttpClient.layerUndici), Layer.provide(LbConfig.layer)),
  [ConfigInvalid, ListenFailed, RoutesFileInvalid, ServicesUnavailable],
)
