/**
 * Routing-decision micro-benchmark: the real selector layers over endpoints with fresh fake metrics
 * and requests in flight, each `pick` timed on its own.
 */
import { ConfigProvider, Layer, ManagedRuntime } from "effect"
import { selectorLayers } from "../../layers/selector/registry.ts"
import { LbConfig } from "../../src/Config.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import { Endpoint } from "../../src/Endpoint.ts"
import { makeRouteMatcher } from "../../src/routes/route-matcher.ts"
import { parseRoutesFile } from "../../src/routes/routes-file.ts"
import { type RequestFacts, requestFacts } from "../../src/routes/rule-match.ts"
import { type Choice, Selector, type SelectorShape } from "../../src/Selector.ts"
import { runRateLimitChecks } from "./rate-limit-check.ts"
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

/** A selector layer's runtime, with the defaults the balancer would read from an empty environment. */
const selectorRuntime = (algorithm: Algorithm) =>
  ManagedRuntime.make(
    selectorLayers[algorithm].pipe(
      Layer.provide(LbConfig.layer),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map()))),
    ),
  )

const timePicks = async (algorithm: Algorithm, count: number, picks: number): Promise<Timing> => {
  const endpoints = endpointsOf(count)
  const choice: Choice = { endpoints, uniform: true }
  const runtime = selectorRuntime(algorithm)
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

/** `count` routes of a routes file, each a host and a path prefix, as a cluster of services would be. */
const routesText = (count: number): string =>
  `routes:\n${Array.from(
    { length: count },
    (_, i) =>
      `  - name: svc-${i}\n    rule: Host(\`svc-${i}.example\`) && PathPrefix(\`/api/${i}\`)\n    service: svc-${i}\n`,
  ).join("")}`

/**
 * Matching and selection together, as the data plane does them for each request: the request's facts
 * read from its method, target and headers, the first matching route found, and that route's own
 * `adaptive` selector picking among its 3 replicas. `worst` sends every request to the route tried
 * last.
 */
const timeMatchAndPick = async (routeCount: number, worst: boolean, picks: number): Promise<Timing> => {
  const parsed = parseRoutesFile("bench", routesText(routeCount))
  if (parsed._tag === "Left") throw new Error(parsed.left.message)
  const runtimes = parsed.right.map(() => selectorRuntime("adaptive"))
  try {
    const routes = parsed.right.map((spec, i) => ({
      priority: spec.priority,
      matches: spec.matches,
      hosts: spec.hosts,
      selector: runtimes[i]!.runSync(Selector) as SelectorShape,
      choice: { endpoints: endpointsOf(3), uniform: true } as Choice,
    }))
    const matcher = makeRouteMatcher(routes)
    const last = routes.indexOf(matcher.ordered[matcher.ordered.length - 1]!)
    const requests = Array.from({ length: 1024 }, (_, i) => {
      const n = worst ? last : i % routeCount
      return { url: `/api/${n}/items/${i}?page=2`, headers: { host: `svc-${n}.example:8081`, accept: "*/*" } }
    })
    const nanos = new Float64Array(picks)
    for (let i = 0; i < WARMUP_PICKS + picks; i++) {
      const request = requests[i % requests.length]!
      const started = process.hrtime.bigint()
      const facts: RequestFacts = requestFacts("GET", request.url, request.headers)
      const route = matcher.match(facts)
      const decision = route?.selector.pick(route.choice)
      const elapsed = process.hrtime.bigint() - started
      if (decision === undefined) throw new Error(`no route or no pick for ${request.url}`)
      if (i >= WARMUP_PICKS) nanos[i - WARMUP_PICKS] = Number(elapsed)
    }
    nanos.sort()
    return { p50Us: quantile(nanos, 0.5) / 1000, p99Us: quantile(nanos, 0.99) / 1000, freshShare: undefined }
  } finally {
    await Promise.all(runtimes.map((runtime) => runtime.dispose()))
  }
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

  console.log(
    `\nRoute matching plus selection (adaptive, 3 replicas per route), ${picks} requests timed one by one`,
  )
  const routeRows: Array<Array<string>> = []
  for (const [routeCount, worst, label] of [
    [1, false, "every request"],
    [50, false, "requests spread over all routes"],
    [50, true, "every request to the route tried last"],
  ] as const) {
    const timing = await timeMatchAndPick(routeCount, worst, picks)
    routeRows.push([String(routeCount), label, timing.p50Us.toFixed(2), timing.p99Us.toFixed(2)])
  }
  console.log(formatTable(["routes", "requests", "p50 µs", "p99 µs"], routeRows))
  runRateLimitChecks(picks)
  console.log(`(timer floor: hrtime.bigint() pair p50 ${timerFloorUs(picks).toFixed(2)} µs, included above)`)
}
