/** The balancer's entry point: reads the environment, runs the balancer until a signal stops it. */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Layer, Logger } from "effect"
import { ListenFailed } from "../layers/proxy/node-undici.ts"
import { BalancerLayer } from "./Balancer.ts"
import { LbConfig } from "./Config.ts"
import { ConfigInvalid } from "./domain/ConfigInvalid.ts"

const program = Layer.launch(
  BalancerLayer.pipe(Layer.provide(NodeHttpClient.layerUndici), Layer.provide(LbConfig.layer)),
).pipe(
  Effect.tapErrorCause((cause) =>
    Effect.sync(() => {
      if (Cause.isInterruptedOnly(cause)) return
      const failure = Cause.failureOption(cause)
      // Expected failures (bad configuration, a port in use) are one line; anything else is a bug.
      const line =
        failure._tag === "Some" &&
        (failure.value instanceof ConfigInvalid || failure.value instanceof ListenFailed)
          ? failure.value.message
          : Cause.pretty(cause)
      process.stderr.write(`swarmguard-lb: ${line}\n`)
    }),
  ),
  Effect.provide(Logger.logFmt),
)

NodeRuntime.runMain(program, { disableErrorReporting: true, disablePrettyLogger: true })
