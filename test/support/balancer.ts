/** The real balancer in the test's own process, from `BalancerLayer`: fast, for most integration tests. */
import { NodeHttpClient } from "@effect/platform-node"
import { ConfigProvider, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { layer as singlePeers } from "../../layers/peers/single.ts"
import { BalancerLayer } from "../../src/Balancer.ts"
import { LbConfig } from "../../src/Config.ts"
// biome-ignore lint/suspicious/noShadowRestrictedNames: the balancer's service is named Proxy
import { Proxy } from "../../src/Proxy.ts"
import { within } from "./wait.ts"

/** Loopback only, on a free port; the tests' variables come on top. */
const baseEnv = { LB_HOST: "127.0.0.1", LB_PORT: "0" }

export interface Balancer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly port: number
  /** Closes the balancer's scope: listener, pools and background fibers. */
  readonly close: () => Promise<void>
}

/** Builds the balancer in this process; the variables reach it through `ConfigProvider.fromMap`. */
export const startBalancer = async (env: Record<string, string>): Promise<Balancer> => {
  const config = ConfigProvider.fromMap(new Map(Object.entries({ ...baseEnv, ...env })))
  const layer = BalancerLayer.pipe(
    Layer.provide(singlePeers),
    Layer.provide(NodeHttpClient.layer),
    Layer.provide(LbConfig.layer),
    Layer.provide(Layer.setConfigProvider(config)),
    // Its logs would bury the test report; LB_TEST_LOGS=1 shows them when debugging.
    Layer.provide(Logger.minimumLogLevel(process.env.LB_TEST_LOGS ? LogLevel.All : LogLevel.None)),
  )
  const runtime = ManagedRuntime.make(layer)
  const close = () => within("the in-process balancer to shut down", 15_000, runtime.dispose())
  try {
    const { address } = await runtime.runPromise(Proxy)
    return { url: `http://127.0.0.1:${address.port}`, port: address.port, close }
  } catch (error) {
    await close()
    throw error
  }
}
