/**
 * The replicas a request may go to: the healthy ones that are not ejected, or — when none is healthy
 * but some are known — all of them (panic mode: better to try than to fail everything, as Envoy does).
 *
 * Slow start (`SLOW_START`): a replica that joins a running pool, or comes back from being unhealthy
 * or ejected, gets a share that ramps from 10 % to 100 % over the window, like HAProxy's `slowstart`
 * and Envoy's slow-start mode, so a cold replica is not handed a least-loaded algorithm's whole herd.
 */
import { Context, Effect, Layer, Runtime } from "effect"
import { LbConfig } from "./Config.ts"
import { Discovery } from "./Discovery.ts"
import type { Replica, ReplicaId } from "./domain/Replica.ts"
import { HealthProbe } from "./HealthProbe.ts"
import { OutlierDetector } from "./OutlierDetector.ts"

/** A warming replica's share never starts below this, so it gets traffic to warm up with. */
const SLOW_START_FLOOR = 0.1

export interface Candidates {
  readonly replicas: ReadonlyArray<Replica>
  readonly panic: boolean
  /**
   * Undefined unless some candidate is in slow start. Then: whether this pick must pass over
   * `replica` to hold its share down; it answers so for the share the ramp withholds.
   */
  readonly deferred: ((replica: Replica) => boolean) | undefined
}

export interface ReplicaPoolShape {
  /** Cached until discovery, health, ejections or a slow start change: cheap enough per request. */
  readonly candidates: () => Candidates
}

interface Warming {
  readonly since: number
  /** Picks it was offered minus the share it should have had: it is passed over while ahead. */
  credit: number
}

export class ReplicaPool extends Context.Tag("swarmguard/ReplicaPool")<ReplicaPool, ReplicaPoolShape>() {
  static readonly layer = Layer.effect(
    ReplicaPool,
    Effect.gen(function* () {
      const config = yield* LbConfig
      const discovery = yield* Discovery
      const health = yield* HealthProbe
      const outliers = yield* OutlierDetector
      const clock = yield* Effect.clock
      const runFork = Runtime.runFork(yield* Effect.runtime<never>())
      const slowStartMs = config.slowStartMs
      let seenDiscovery = -1
      let seenHealth = -1
      let seenOutliers = -1
      let cached: Candidates = { replicas: [], panic: false, deferred: undefined }
      const warming = new Map<ReplicaId, Warming>()
      /** When the next slow start ends: the cache is rebuilt then. */
      let warmUntil = Number.POSITIVE_INFINITY

      /** Deterministic shares: the replica takes a pick only while its credit has not run ahead. */
      const deferred = (replica: Replica): boolean => {
        const warm = warming.get(replica.id)
        if (warm === undefined) return false
        const elapsed = clock.unsafeCurrentTimeMillis() - warm.since
        const share = Math.max(SLOW_START_FLOOR, Math.min(1, elapsed / slowStartMs))
        warm.credit += share
        // Ten shares of 0.1 make one pick, though in floating point they add up to 0.999….
        if (warm.credit < 1 - 1e-9) return true
        warm.credit -= 1
        return false
      }

      /** When each replica was first seen; those of the first non-empty discovery count as always there. */
      const joinedAt = new Map<ReplicaId, number>()

      /** When the replica last came into rotation: it joined, turned healthy, or was readmitted. */
      const inSince = (replicaId: ReplicaId): number =>
        Math.max(
          joinedAt.get(replicaId) ?? Number.NEGATIVE_INFINITY,
          health.state(replicaId)?.changedAt ?? Number.NEGATIVE_INFINITY,
          outliers.state(replicaId)?.readmittedAt ?? Number.NEGATIVE_INFINITY,
        )

      const updateWarming = (
        known: ReadonlyArray<Replica>,
        replicas: ReadonlyArray<Replica>,
        now: number,
      ) => {
        // The first replicas of a pool all start together: there is no herd to spare them.
        const firstSeenAt = joinedAt.size === 0 ? Number.NEGATIVE_INFINITY : now
        for (const replica of known) if (!joinedAt.has(replica.id)) joinedAt.set(replica.id, firstSeenAt)
        if (joinedAt.size > 2 * known.length + 16) {
          const current = new Set(known.map((replica) => replica.id))
          for (const id of joinedAt.keys()) if (!current.has(id)) joinedAt.delete(id)
        }
        const stillWarming = new Set<ReplicaId>()
        warmUntil = Number.POSITIVE_INFINITY
        for (const replica of replicas) {
          const since = inSince(replica.id)
          if (now >= since + slowStartMs) continue
          stillWarming.add(replica.id)
          warmUntil = Math.min(warmUntil, since + slowStartMs)
          if (warming.get(replica.id)?.since !== since) warming.set(replica.id, { since, credit: 0 })
        }
        for (const id of warming.keys()) if (!stillWarming.has(id)) warming.delete(id)
      }

      const recompute = (now: number) => {
        const known = discovery.current()
        const healthy = known.filter((replica) => health.isHealthy(replica.id))
        const admitted = healthy.filter((replica) => !outliers.isEjected(replica.id))
        const panic = healthy.length === 0 && known.length > 0
        if (panic && !cached.panic) {
          runFork(
            Effect.logError("no replica is healthy: routing to all known replicas (panic mode)").pipe(
              Effect.annotateLogs({ known: known.length }),
            ),
          )
        }
        // Ejection never empties the pool by itself: the cap on ejections leaves one replica at least,
        // and should the rest be unhealthy, the healthy ones are still better than none.
        const replicas = panic ? known : admitted.length > 0 ? admitted : healthy
        if (slowStartMs > 0) updateWarming(known, replicas, now)
        cached = { replicas, panic, deferred: warming.size > 0 ? deferred : undefined }
      }

      return {
        candidates: () => {
          const discoveryVersion = discovery.version()
          const healthVersion = health.version()
          const outliersVersion = outliers.version()
          const now = slowStartMs > 0 ? clock.unsafeCurrentTimeMillis() : 0
          if (
            discoveryVersion !== seenDiscovery ||
            healthVersion !== seenHealth ||
            outliersVersion !== seenOutliers ||
            now >= warmUntil
          ) {
            seenDiscovery = discoveryVersion
            seenHealth = healthVersion
            seenOutliers = outliersVersion
            recompute(now)
          }
          return cached
        },
      }
    }),
  )
}
