/**
 * Routing-decision micro-benchmark: the real selector layers over endpoints with fresh fake metrics
 * and requests in flight, each `pick` timed on its own.
 */
import { ConfigProvider, Layer, ManagedRuntime } from "effect"
import { selectorLayers } from "../../layers/selector/registry.ts"
import { LbConfig } from "../../src/Config.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import { Endpoint } from "../../src/Endpoint.ts"
import { type Choice, Selector } from "../../src/Selector.ts"
import { formatTable } from "./report.ts"

export const REPLICA_COUNTS = [3, 30, 300]
const ALGORITHMS: ReadonlyArray<Algorithm> = ["lease", "round-robin", "metrics", "hybrid", "adaptive"]
const WARMUP_PICKS = 5_000
/** Requests in flight while picking, as with the HTTP benchmark's 50 connections. */
const IN_FLIGHT = 50

/**
 * A pool's first endpoints (no slow start), with metrics sampled now, so every replica is fresh for
 * the whole run (METRICS_MAX_AGE is 3 s by default).
 */
const endpointsOf = (count: number): Array<Endpoint> => {
  const sampledAt = Date.now()
  return Array.from({ length: count }, (_, i) => {
    const origin = `http://10.0.${i >> 8}.${i & 255}:8080`
    const endpoint = new Endpoint(
      { id: origin.slice(7), name: `web-stress.${i + 1}`, origin, node: undefined },
      Number.NEGATIVE_INFINITY,
    )
    endpoint.metrics = {
      cpuPercent: Math.random() * 100,
      memoryPercent: Math.random() * 100,
      networkMbps: Math.random() * 50,
      sampledAt,
    }
    return endpoint
  })
}

const quantile = (sorted: Float64Array, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

interface Timing {
  readonly p50Us: number
  readonly p99Us: number
  /** Share of timed picks made on fresh metrics; undefined for algorithms that read none. */
  readonly freshShare: number | undefined
}

const timePicks = async (algorithm: Algorithm, count: number, picks: number): Promise<Timing> => {
  const endpoints = endpointsOf(count)
  const choice: Choice = { endpoints, uniform: true }
  const runtime = ManagedRuntime.make(
    selectorLayers[algorithm].pipe(
      // The defaults, as the balancer would read them from an empty environment.
      Layer.provide(LbConfig.layer),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map()))),
    ),
  )
  try {
    const selector = runtime.runSync(Selector)
    // Requests held throughout on random endpoints, so in-flight counts differ between them.
    for (let i = 0; i < 2 * count; i++) endpoints[Math.floor(Math.random() * count)]!.active++
    // Each pick puts a request in flight on its endpoint and ends the one put there IN_FLIGHT picks
    // earlier, outside the timing, reporting the exchange as a selector that learns from them would
    // see it.
    const inFlight: Array<Endpoint | undefined> = new Array(IN_FLIGHT)
    const nanos = new Float64Array(picks)
    let fresh = 0
    for (let i = 0; i < WARMUP_PICKS + picks; i++) {
      const started = process.hrtime.bigint()
      const decision = selector.pick(choice)
      const elapsed = process.hrtime.bigint() - started
      if (decision === undefined) throw new Error(`${selector.algorithm} refused every replica`)
      const slot = i % IN_FLIGHT
      const previous = inFlight[slot]
      if (previous !== undefined) {
        previous.active--
        selector.observe(previous, 1 + Math.random() * 10, true)
      }
      decision.endpoint.active++
      inFlight[slot] = decision.endpoint
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
    for (const algorithm of ALGORITHMS) {
      const timing = await timePicks(algorithm, count, picks)
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
