/**
 * The replicas a request may go to: the healthy ones, or — when none is healthy but some are known —
 * all of them (panic mode: better to try than to fail everything, as Envoy does).
 */
import { Context, Effect, Layer, Runtime } from "effect"
import { Discovery } from "./Discovery.ts"
import type { Replica } from "./domain/Replica.ts"
import { HealthProbe } from "./HealthProbe.ts"

export interface Candidates {
  readonly replicas: ReadonlyArray<Replica>
  readonly panic: boolean
}

export interface ReplicaPoolShape {
  /** Cached until discovery or health changes: cheap enough to call per request. */
  readonly candidates: () => Candidates
}

export class ReplicaPool extends Context.Tag("swarmguard/ReplicaPool")<ReplicaPool, ReplicaPoolShape>() {
  static readonly layer = Layer.effect(
    ReplicaPool,
    Effect.gen(function* () {
      const discovery = yield* Discovery
      const health = yield* HealthProbe
      const runFork = Runtime.runFork(yield* Effect.runtime<never>())
      let seenDiscovery = -1
      let seenHealth = -1
      let cached: Candidates = { replicas: [], panic: false }

      const recompute = () => {
        const known = discovery.current()
        const healthy = known.filter((replica) => health.isHealthy(replica.id))
        const panic = healthy.length === 0 && known.length > 0
        if (panic && !cached.panic) {
          runFork(
            Effect.logError("no replica is healthy: routing to all known replicas (panic mode)").pipe(
              Effect.annotateLogs({ known: known.length }),
            ),
          )
        }
        cached = { replicas: panic ? known : healthy, panic }
      }

      return {
        candidates: () => {
          const discoveryVersion = discovery.version()
          const healthVersion = health.version()
          if (discoveryVersion !== seenDiscovery || healthVersion !== seenHealth) {
            seenDiscovery = discoveryVersion
            seenHealth = healthVersion
            recompute()
          }
          return cached
        },
      }
    }),
  )
}
