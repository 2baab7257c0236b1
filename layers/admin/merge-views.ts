/**
 * The JSON views of a balancer that runs as several worker processes (`LB_WORKERS`), merged from
 * every worker's own. Counts add up; averages are recombined from the counts they average over;
 * a replica is healthy when every worker finds it so, and its metrics are the freshest any worker
 * holds. With one part the part is the answer, unchanged.
 */
import type { Cluster } from "../../src/RouteTable.ts"
import type { BalancerMetrics, healthJson, replicasJson } from "./views.ts"

/** What each average in `GET /metrics` is an average over, for recombining it. */
export interface AverageWeights {
  /** Routing decisions timed: `avg_routing_time_ms`. */
  readonly routed: number
  /** Decisions that read metrics: `cache_hit_rate`. */
  readonly metricsDecisions: number
  /** Requests that left a queue: `limits.queue.avg_wait_ms`, over all routes and per route. */
  readonly queueExits: number
  readonly routeQueueExits: Readonly<Record<string, number>>
}

export interface MetricsPart {
  readonly metrics: BalancerMetrics
  readonly weights: AverageWeights
}

export const averageWeightsOf = (clusters: ReadonlyArray<Cluster>): AverageWeights => {
  let routed = 0
  let metricsDecisions = 0
  let queueExits = 0
  const routeQueueExits: Record<string, number> = {}
  for (const { route, stats, router } of clusters) {
    routed += stats.routingTimes().count
    metricsDecisions += stats.metricsReads().decisions
    const exits = router.queue().waitTimes.count
    queueExits += exits
    routeQueueExits[route.name] = exits
  }
  return { routed, metricsDecisions, queueExits, routeQueueExits }
}

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

/** Numbers add, records merge key by key, flags are raised by any part; text and lists are the first's. */
const addUp = (a: Json | undefined, b: Json | undefined): Json => {
  if (a === undefined || a === null) return b ?? null
  if (b === undefined || b === null) return a
  if (typeof a === "number" && typeof b === "number") return a + b
  if (typeof a === "boolean" && typeof b === "boolean") return a || b
  if (typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const sum: Record<string, Json> = {}
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      sum[key] = addUp((a as Record<string, Json>)[key], (b as Record<string, Json>)[key])
    }
    return sum
  }
  return a
}

/** The mean of means, each weighted by how many values it averaged; `none` when nothing was averaged. */
const recombined = <N extends number | null>(
  parts: ReadonlyArray<readonly [mean: number | null, weight: number]>,
  none: N,
): number | N => {
  let weight = 0
  let sum = 0
  let contributors = 0
  let only: number | null = null
  for (const [mean, w] of parts) {
    if (mean === null || w === 0) continue
    weight += w
    sum += mean * w
    contributors++
    only = mean
  }
  // One worker's average is its own, exactly (mean × w ÷ w need not be).
  return weight === 0 ? none : contributors === 1 ? (only as number) : sum / weight
}

/** Request rates are shown to two decimals, as one process shows them. */
const hundredths = (n: number) => Math.round(n * 100) / 100

export const mergeMetrics = (parts: ReadonlyArray<MetricsPart>): BalancerMetrics => {
  if (parts.length === 1) return parts[0]!.metrics
  const sum = parts.reduce<Json>((total, { metrics }) => addUp(total, metrics as unknown as Json), null)
  // A copy: what only one part has is that part's own object, and it is rewritten below.
  const merged = structuredClone(sum) as unknown as Mutable<BalancerMetrics>
  merged.requests_per_second = hundredths(merged.requests_per_second)
  merged.uptime_seconds = Math.max(...parts.map(({ metrics }) => metrics.uptime_seconds))
  merged.avg_routing_time_ms = recombined(
    parts.map(({ metrics, weights }) => [metrics.avg_routing_time_ms, weights.routed]),
    0,
  )
  merged.cache_hit_rate = recombined(
    parts.map(({ metrics, weights }) => [metrics.cache_hit_rate, weights.metricsDecisions]),
    null,
  )
  merged.limits.queue.avg_wait_ms = recombined(
    parts.map(({ metrics, weights }) => [metrics.limits.queue.avg_wait_ms, weights.queueExits]),
    0,
  )
  for (const [name, route] of Object.entries(merged.routes)) {
    route.requests_per_second = hundredths(route.requests_per_second)
    route.limits.queue.avg_wait_ms = recombined(
      parts.map(({ metrics, weights }) => [
        metrics.routes[name]?.limits.queue.avg_wait_ms ?? null,
        weights.routeQueueExits[name] ?? 0,
      ]),
      0,
    )
  }
  return merged
}

type ReplicaJson = ReturnType<typeof replicasJson>[number]

const fresher = <T extends { readonly age_ms?: number | null | undefined } | null>(a: T, b: T): T =>
  a === null ? b : b === null ? a : (b.age_ms ?? Infinity) < (a.age_ms ?? Infinity) ? b : a

/** One entry per route and replica: each worker checks and counts on its own. */
export const mergeReplicas = (
  parts: ReadonlyArray<ReadonlyArray<ReplicaJson>>,
): ReadonlyArray<ReplicaJson> => {
  if (parts.length === 1) return parts[0]!
  const merged = new Map<string, ReplicaJson>()
  for (const part of parts) {
    for (const replica of part) {
      const key = `${replica.route}\u0000${replica.id}`
      const seen = merged.get(key)
      if (seen === undefined) {
        merged.set(key, replica)
        continue
      }
      const metrics = fresher(seen.metrics, replica.metrics)
      merged.set(key, {
        ...seen,
        healthy: seen.healthy && replica.healthy,
        consecutive_failures: Math.max(seen.consecutive_failures, replica.consecutive_failures),
        last_error: seen.last_error ?? replica.last_error,
        ejected: seen.ejected || replica.ejected,
        ejections: seen.ejections + replica.ejections,
        active_leases: seen.active_leases + replica.active_leases,
        picks: seen.picks + replica.picks,
        metrics,
        score: metrics === seen.metrics ? seen.score : replica.score,
        load_report: fresher(seen.load_report, replica.load_report),
      })
    }
  }
  return [...merged.values()]
}

type HealthJson = ReturnType<typeof healthJson>

/** Degraded when any worker is; a replica counts as healthy when every worker finds it so. */
export const mergeHealth = (parts: ReadonlyArray<HealthJson>, healthyEverywhere: number) => {
  if (parts.length === 1) return parts[0]!
  const degraded = [...new Set(parts.flatMap((part) => part.degraded ?? []))]
  return {
    status: degraded.length > 0 ? "degraded" : "ok",
    algorithm: parts[0]!.algorithm,
    workers: parts.length,
    replicas_known: Math.max(...parts.map((part) => part.replicas_known)),
    replicas_healthy: healthyEverywhere,
    ...(degraded.length > 0 ? { degraded } : {}),
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] }
