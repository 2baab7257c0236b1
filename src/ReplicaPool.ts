/**
 * The endpoints of the balanced service, one per replica, kept in step with discovery: a replica that
 * appears gets a new Endpoint, one that leaves is retired with all its state (as linkerd's pool applies
 * discovery's adds and removes). And the candidates a request may go to: the healthy endpoints that
 * are not ejected, or — when none is healthy but some are known — all of them (panic mode: better to
 * try than to fail everything, as Envoy does).
 *
 * Slow start (`SLOW_START`): an endpoint that joins a running pool, turns healthy again or is
 * readmitted has its effective weight ramp from 10 % to 100 % of its weight over the window, as
 * Envoy's slow-start factor scales a host's weight, so a cold replica is not handed a least-loaded
 * algorithm's whole herd. Selectors apply the weight; the pool only sets it (docs/ARCHITECTURE.md,
 * "Weights and slow start").
 */
import { Context, Effect, FiberSet, Layer } from "effect"
import { LbConfig } from "./Config.ts"
import { Discovery } from "./Discovery.ts"
import type { Replica, ReplicaId } from "./domain/Replica.ts"
import { Endpoint } from "./Endpoint.ts"
import { MetricsSource } from "./MetricsSource.ts"

/** A warming endpoint's weight never starts below this share, so it gets traffic to warm up with. */
const SLOW_START_FLOOR = 0.1

/** While an endpoint warms, its weight is stepped this many times over the window. */
const SLOW_START_STEPS = 100

export interface Candidates {
  /** Never empty unless no replica is known. */
  readonly endpoints: ReadonlyArray<Endpoint>
  /** Chosen among every known endpoint because none is healthy. */
  readonly panic: boolean
  /** Every candidate has the same effective weight, so selectors may leave weights aside. */
  readonly uniform: boolean
  /** Some candidate has a cap on requests in flight (`Endpoint.maxRequests`). */
  readonly capped: boolean
}

export interface ReplicaPoolShape {
  /** Every known endpoint, in discovery's order. */
  readonly endpoints: () => ReadonlyArray<Endpoint>
  /** Cached until discovery, a health or ejection change, or a slow-start step: cheap per request. */
  readonly candidates: () => Candidates
  /** An endpoint's health or ejection changed: the candidates are rebuilt at the next read. */
  readonly invalidate: () => void
}

export class ReplicaPool extends Context.Tag("swarmguard/ReplicaPool")<ReplicaPool, ReplicaPoolShape>() {
  static readonly layer = Layer.scoped(
    ReplicaPool,
    Effect.gen(function* () {
      const config = yield* LbConfig
      const discovery = yield* Discovery
      const metrics = yield* MetricsSource
      const clock = yield* Effect.clock
      // Panic is noticed on the data plane, outside any fiber: it logs through this layer's runtime.
      const run = yield* FiberSet.makeRuntime<never>()
      const slowStartMs = config.slowStartMs
      const stepMs = slowStartMs / SLOW_START_STEPS

      let endpoints: ReadonlyArray<Endpoint> = []
      const byId = new Map<ReplicaId, Endpoint>()
      /** Replicas that join after the pool first had some ramp up; the first ones do not. */
      let populated = false
      let seenDiscovery = -1
      let seenMetrics = -1
      let stale = true
      /** When a warming endpoint's weight next steps up: the candidates are rebuilt then. */
      let rampDueAt = Number.POSITIVE_INFINITY
      let cached: Candidates = { endpoints: [], panic: false, uniform: true, capped: false }

      /** Applies discovery's current set: unchanged replicas keep their endpoint, the rest come and go. */
      const applyDiscovery = (replicas: ReadonlyArray<Replica>) => {
        // The first replicas of a pool all start together: there is no herd to spare them.
        const joinedAt = populated ? clock.unsafeCurrentTimeMillis() : Number.NEGATIVE_INFINITY
        populated ||= replicas.length > 0
        const next = replicas.map((replica) => {
          const weight = replica.weight ?? 1
          const known = byId.get(replica.id)
          const endpoint =
            known === undefined || known.replica.origin !== replica.origin
              ? new Endpoint(replica, joinedAt, weight)
              : known
          // A new weight or cap keeps the endpoint and its state: only its share changes.
          endpoint.weight = weight
          endpoint.maxRequests = replica.maxRequests ?? config.replicaMaxRequests
          return endpoint
        })
        const kept = new Set(next)
        for (const endpoint of endpoints) {
          if (kept.has(endpoint)) continue
          endpoint.retired = true
          // Its in-flight requests still hold their connections: the pool closes once they finish.
          void endpoint.upstream?.close()
        }
        byId.clear()
        for (const endpoint of next) byId.set(endpoint.id, endpoint)
        endpoints = next
      }

      /** Brings the endpoints up to date with discovery and the metrics; cheap when nothing changed. */
      const sync = () => {
        const discoveryVersion = discovery.version()
        const metricsVersion = metrics.version()
        if (discoveryVersion === seenDiscovery && metricsVersion === seenMetrics) return
        if (discoveryVersion !== seenDiscovery) {
          seenDiscovery = discoveryVersion
          applyDiscovery(discovery.current())
          stale = true
        }
        seenMetrics = metricsVersion
        for (const endpoint of endpoints) endpoint.metrics = metrics.get(endpoint.id)
      }

      /** Sets each candidate's effective weight; returns whether they are all equal. */
      const weigh = (candidates: ReadonlyArray<Endpoint>, now: number): boolean => {
        rampDueAt = Number.POSITIVE_INFINITY
        let uniform = true
        for (const endpoint of candidates) {
          let weight = endpoint.weight
          const warmFor = now - endpoint.inSince
          if (slowStartMs > 0 && warmFor < slowStartMs) {
            weight *= Math.max(SLOW_START_FLOOR, warmFor / slowStartMs)
            rampDueAt = Math.min(rampDueAt, now + stepMs)
          }
          endpoint.effectiveWeight = weight
          uniform &&= weight === candidates[0]!.effectiveWeight
        }
        return uniform
      }

      const rebuild = (now: number) => {
        stale = false
        // Weight 0 drains: nothing new is sent, what is under way finishes.
        const known = endpoints.filter((endpoint) => endpoint.weight > 0)
        const healthy = known.filter((endpoint) => endpoint.health.healthy)
        const admitted = healthy.filter((endpoint) => !endpoint.ejected)
        const panic = healthy.length === 0 && known.length > 0
        if (panic && !cached.panic) {
          run(
            Effect.logError("no replica is healthy: routing to all known replicas (panic mode)").pipe(
              Effect.annotateLogs({ known: known.length }),
            ),
          )
        }
        // Ejection never empties the pool by itself: the cap on ejections leaves one replica at least,
        // and should the rest be unhealthy, the healthy ones are still better than none.
        const candidates = panic ? known : admitted.length > 0 ? admitted : healthy
        cached = {
          endpoints: candidates,
          panic,
          uniform: weigh(candidates, now),
          capped: candidates.some((endpoint) => endpoint.maxRequests > 0),
        }
      }

      return {
        endpoints: () => {
          sync()
          return endpoints
        },
        candidates: () => {
          sync()
          const now = slowStartMs > 0 ? clock.unsafeCurrentTimeMillis() : 0
          if (stale || now >= rampDueAt) rebuild(now)
          return cached
        },
        invalidate: () => {
          stale = true
        },
      }
    }),
  )
}
