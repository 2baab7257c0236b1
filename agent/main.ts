/** The monitoring agent's entry point: samples the local Docker Engine (or processes) and serves the API. */
import * as HttpServerError from "@effect/platform/HttpServerError"
import { Effect, Layer } from "effect"
import { ConfigInvalid } from "../src/domain/ConfigInvalid.ts"
import { launch } from "../src/launch.ts"
import { layer as apiLayer } from "./Api.ts"
import { AgentConfig } from "./Config.ts"
import { layer as dockerSourceLayer } from "./docker/source.ts"
import { layer as processSourceLayer } from "./process/source.ts"
import { Sampler } from "./Sampler.ts"
import { SourceUnavailable } from "./StatsSource.ts"

const sourceLayer = Layer.unwrapEffect(
  Effect.map(AgentConfig, (config) => (config.source === "docker" ? dockerSourceLayer : processSourceLayer)),
)

launch(
  "swarmguard-agent",
  apiLayer.pipe(
    Layer.provideMerge(Sampler.layer),
    Layer.provide(sourceLayer),
    Layer.provide(AgentConfig.layer),
  ),
  [ConfigInvalid, SourceUnavailable, HttpServerError.ServeError],
)
