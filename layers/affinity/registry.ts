/** The affinity layer for each kind a route may ask for. */
import { Effect, Layer } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { layer as cookieLayer } from "./cookie.ts"
import { layer as hashLayer } from "./hash.ts"
import { layer as noneLayer } from "./none.ts"

export const affinityLayer = Layer.unwrapEffect(
  Effect.map(LbConfig, (config) =>
    config.affinity === undefined ? noneLayer : config.affinity._tag === "Cookie" ? cookieLayer : hashLayer,
  ),
)
