/**
 * Routing-decision micro-benchmark: the real selector layers, the real memory LeaseStore and fresh
 * fake metrics, each `pick` timed on its own.
 */
import { ConfigProvider, Effect, Layer, ManagedRuntime } from "effect"
import { layer as memoryLeaseLayer } from "../../layers/lease-store/memory.ts"
import { layer as adaptiveLayer } from "../../layers/selector/adaptive.ts"
import { layer as hybridLayer } from "../../layers/selector/hybrid.ts"
import { layer as leaseLayer } from "../../layers/selector/lease.ts"
import { layer as metricsLayer } from "../../layers/selector/metrics.ts"
import { layer as roundRobinLayer } from "../../layers/selector/round-robin.ts"
import { LbConfig } from "../../src/Config.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Replica, ReplicaId } from "../../src/domain/Replica.ts"
import { type Lease, LeaseStore } from "../../src/LeaseStore.ts"
import { MetricsSource, type ReplicaMetrics } from "../../src/MetricsSource.ts"
import { Selector } from "../../src/Selector.ts"
import { formatTable } from "./report.ts"

export const REPLICA_COUNTS = [3, 30, 300]
const ALGORITHMS: ReadonlyArray<
  [Algorithm, Layer.Layer<Selector, never, LbConfig | LeaseStore | MetricsSource>]
> = [
  ["lease", leaseLayer],
  ["round-robin", roundRobinLayer],
  ["metrics", metricsLayer],
  ["hybrid", hybridLayer],
  ["adaptive", adaptiveLayer],
]
const WARMUP_PICKS = 5_000
/** Leases held while picking, as with the HTTP benchmark's 50 connections in flight. */
const IN_FLIGHT = 50

const replicasOf = (count: number): Array<Replica> =>
  Array.from({ length: count }, (_, i) => {
    const origin = `http://10.0.${i >> 8}.${i & 255}:8080`
    return { id: origin.slice(7), name: `web-stress.${i + 1}`, origin, node: undefined }
  })

/** Sampled now, so every replica is fresh for the whole run (METRICS_MAX_AGE is 3 s by default). */
const freshMetrics = (replicas: ReadonlyArray<Replica>): Map<ReplicaId, ReplicaMetrics> => {
  const sampledAt = Date.now()
  return new Map(
    replicas.map((replica) => [
      replica.id,
      {
        cpuPercent: Math.random() * 100,
        memoryPercent: Math.random() * 100,
        networkMbps: Math.random() * 50,
        sampledAt,
      },
    ]),
  )
}

const quantile = (sorted: Float64Array, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

interface Timing {
  readonly p50Us: number
  readonly p99Us: number
  /** Share of timed picks made on fresh metrics; undefined for algorithms that read none. */
  readonly freshShare: number | undefined
}

const timePicks = async (
  selectorLayer: Layer.Layer<Selector, never, LbConfig | LeaseStore | MetricsSource>,
  replicas: ReadonlyArray<Replica>,
  picks: number,
): Promise<Timing> => {
  const metrics = freshMetrics(replicas)
  const dependencies = Layer.mergeAll(
    memoryLeaseLayer,
    Layer.succeed(MetricsSource, { get: (replicaId) => metrics.get(replicaId), pollFailures: () => ({}) }),
  ).pipe(
    // The defaults, as the balancer would read them from an empty environment.
    Layer.provideMerge(LbConfig.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map()))),
  )
  const runtime = ManagedRuntime.make(selectorLayer.pipe(Layer.provideMerge(dependencies)))
  try {
    const [selector, leases] = runtime.runSync(Effect.all([Selector, LeaseStore]))
    // Leases held throughout on random replicas, so lease counts differ between replicas.
    for (let i = 0; i < 2 * replicas.length; i++) {
      leases.acquire(replicas[Math.floor(Math.random() * replicas.length)]!.id)
    }
    // Each pick takes a lease and releases the one taken IN_FLIGHT picks earlier, outside the timing,
    // reporting the exchange as a selector that learns from them would see it.
    const inFlight: Array<Lease | undefined> = new Array(IN_FLIGHT)
    const nanos = new Float64Array(picks)
    let fresh = 0
    for (let i = 0; i < WARMUP_PICKS + picks; i++) {
      const started = process.hrtime.bigint()
      const decision = selector.pick(replicas)
      const elapsed = process.hrtime.bigint() - started
      if (decision === undefined) throw new Error(`${selector.algorithm} refused every replica`)
      const slot = i % IN_FLIGHT
      const previous = inFlight[slot]
      if (previous !== undefined) {
        leases.release(previous)
        selector.observe(previous.replicaId, 1 + Math.random() * 10, true)
      }
      inFlight[slot] = leases.acquire(decision.replica.id)
      if (i < WARMUP_PICKS) continue
      nanos[i - WARMUP_PICKS] = Number(elapsed)
      if (decision.freshMetrics) fresh++
    }
    nanos.sort()
    const readsMetrics = selector.algorithm !== "lease" && selector.algorithm !== "round-robin"
    return {
      p50Us: quantile(nanos, 0.5) / 1000,
      p99Us: quantile(nanos, 0.99) / 1000,
      freshShare: readsMetrics ? fresh / picks : undefined,
    }
  } finally {
    await runtime.dispose()
  }
}

/** What two back-to-back `hrtime.bigint()` calls cost: the floor under every timed pick. */
const timerFloorUs = (samples: number): number => {
  const nanos = new Float64Array(samples)
  for (let i = 0; i < samples; i++) {
    const started = process.hrtime.bigint()
    nanos[i] = Number(process.hrtime.bigint() - started)
  }
  nanos.sort()
  return quantile(nanos, 0.5) / 1000
}

export const runRouting = async (picks: number): Promise<void> => {
  console.log(`\nRouting decision: selector.pick(candidates), ${picks} picks timed one by one after warm-up`)
  const rows: Array<Array<string>> = []
  for (const count of REPLICA_COUNTS) {
    const replicas = replicasOf(count)
    for (const [algorithm, layer] of ALGORITHMS) {
      const timing = await timePicks(layer, replicas, picks)
      rows.push([
        algorithm,
        String(count),
        timing.p50Us.toFixed(2),
        timing.p99Us.toFixed(2),
        timing.freshShare === undefined ? "-" : `${(timing.freshShare * 100).toFixed(0)}%`,
      ])
    }
  }
  console.log(formatTable(["algorithm", "replicas", "p50 µs", "p99 µs", "fresh metrics"], rows))
  console.log(`(timer floor: hrtime.bigint() pair p50 ${timerFloorUs(picks).toFixed(2)} µs, included above)`)
}
