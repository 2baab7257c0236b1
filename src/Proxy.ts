/** The balancer's listener and data plane. */
import { Context } from "effect"

export interface ProxyShape {
  /** Where the listener is bound (the port is the real one when `LB_PORT=0`). */
  readonly address: { readonly host: string; readonly port: number }
}

// The design names this service Proxy; as a module-scoped name it does not reach the global one.
// biome-ignore lint/suspicious/noShadowRestrictedNames: see above
export class Proxy extends Context.Tag("swarmguard/Proxy")<Proxy, ProxyShape>() {}
