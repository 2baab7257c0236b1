/** The current replica set of the target service. */
import { Context } from "effect"
import type { Replica } from "./domain/Replica.ts"

export interface DiscoveryShape {
  readonly current: () => ReadonlyArray<Replica>
  /** Changes whenever `current()` may return a different set, so readers can cache derived views. */
  readonly version: () => number
}

export class Discovery extends Context.Tag("swarmguard/Discovery")<Discovery, DiscoveryShape>() {}
