/**
 * Merging the JSON views of a balancer that runs as several workers (`LB_WORKERS`): in `GET /metrics`
 * counts add up, flags are raised by any worker and averages are recombined weighted by what they
 * average over; in `/_lb/replicas` a replica is healthy only where every worker finds it so and carries
 * the freshest metrics any worker holds; `/_lb/health` is degraded when any worker is. Every part is
 * built by hand, so each test shows only the figures that matter to it.
 */
import { describe, expect, it } from "vitest"
import type { RouteStats } from "../../layers/admin/combined-stats.ts"
import type { QueueView, RateLimitView, storeView } from "../../layers/admin/limit-views.ts"
import {
  type AverageWeights,
  averageWeightsOf,
  type MetricsPart,
  mergeHealth,
  mergeMetrics,
  mergeReplicas,
} from "../../layers/admin/merge-views.ts"
import type { BalancerMetrics, healthJson, replicasJson } from "../../layers/admin/views.ts"
import type { Cluster } from "../../src/RouteTable.ts"

type Replica = ReturnType<typeof replicasJson>[number]
type Health = ReturnType<typeof healthJson>
type StoreView = ReturnType<typeof storeView>

// --- builders: an idle worker's view, with only the given figures changed ---

const queue = (overrides: Partial<QueueView> = {}): QueueView => ({
  length: 0,
  queued: 0,
  served: 0,
  full: 0,
  timed_out: 0,
  abandoned: 0,
  avg_wait_ms: 0,
  ...overrides,
})

const rateLimit = (overrides: Partial<RateLimitView> = {}): RateLimitView => ({
  admitted: 0,
  limited: 0,
  unknown_key: 0,
  unavailable: 0,
  ...overrides,
})

type RouteOverrides = Partial<Omit<RouteStats, "limits">> & {
  readonly queue?: Partial<QueueView>
  readonly rate_limit?: RateLimitView | null
}

const route = ({ queue: queued = {}, rate_limit = null, ...overrides }: RouteOverrides = {}): RouteStats => ({
  algorithm: "lease",
  total_requests: 0,
  requests_per_second: 0,
  routing_decisions: {},
  limits: { queue: queue(queued), rate_limit },
  ...overrides,
})

type MetricsOverrides = Partial<Omit<BalancerMetrics, "limits">> & {
  readonly queue?: Partial<QueueView>
  readonly rate_limit?: RateLimitView | null
  readonly store?: Partial<StoreView>
}

const metrics = ({
  queue: queued = {},
  rate_limit = null,
  store = {},
  ...overrides
}: MetricsOverrides = {}): BalancerMetrics => ({
  total_requests: 0,
  requests_per_second: 0,
  routing_decisions: {},
  avg_routing_time_ms: 0,
  cache_hit_rate: null,
  fallback_decisions: 0,
  panic_decisions: 0,
  retries: 0,
  retries_denied: 0,
  responses: { "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 },
  failures: {
    upstream_error: 0,
    upstream_timeout: 0,
    no_replica: 0,
    client_abort: 0,
    request_too_large: 0,
    bad_request: 0,
    queue_full: 0,
    queue_timeout: 0,
    no_route: 0,
  },
  load_reports_rejected: 0,
  locality: { local: 0, spilled: 0 },
  uptime_seconds: 0,
  routes: {},
  algorithm: "lease",
  leases: { acquired: 0, released: 0, expired: 0, active: 0 },
  ejections: 0,
  agent_poll_failures: {},
  limits: {
    queue: queue(queued),
    rate_limit,
    rate_limit_store: {
      backend: "memory",
      degraded: false,
      outages: 0,
      redis_errors: 0,
      local_decisions: 0,
      unavailable_decisions: 0,
      ...store,
    },
  },
  ...overrides,
})

/** One worker's `GET /metrics` with what its averages are averages over (nothing, unless given). */
const part = (overrides: MetricsOverrides = {}, weights: Partial<AverageWeights> = {}): MetricsPart => ({
  metrics: metrics(overrides),
  weights: { routed: 0, metricsDecisions: 0, queueExits: 0, routeQueueExits: {}, ...weights },
})

const replica = (overrides: Partial<Replica> = {}): Replica => ({
  route: "api",
  local: false,
  id: "r1",
  name: "api.1",
  origin: "http://10.0.0.1:8080",
  node: null,
  weight: 1,
  healthy: true,
  consecutive_failures: 0,
  last_error: null,
  ejected: false,
  ejections: 0,
  active_leases: 0,
  picks: 0,
  metrics: null,
  score: null,
  load_report: null,
  ...overrides,
})

/** An agent sample `ageMs` old; `cpu` tells the samples apart. */
const sample = (ageMs: number, cpu: number): NonNullable<Replica["metrics"]> => ({
  cpu_percent: cpu,
  memory_percent: 50,
  network_mbps: 1,
  age_ms: ageMs,
  fresh: true,
})

/** The replica's own load report, `ageMs` old (undefined: unknown); `rps` tells the reports apart. */
const loadReport = (ageMs: number | undefined, rps: number): NonNullable<Replica["load_report"]> => ({
  cpu_utilization: 0.5,
  mem_utilization: null,
  application_utilization: null,
  rps,
  named_metrics: {},
  age_ms: ageMs,
})

/** As the primary reads a worker's view: through JSON, where an undefined field is absent. */
const overTheWire = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T

const health = (overrides: Partial<Health> = {}): Health => ({
  status: "ok",
  algorithm: "lease",
  replicas_known: 0,
  replicas_healthy: 0,
  ...overrides,
})

const degradedBy = (...reasons: ReadonlyArray<string>): Health =>
  health({ status: "degraded", degraded: [...reasons] })

// --- GET /metrics ---

describe("mergeMetrics", () => {
  it("returns a single worker's metrics unchanged", () => {
    const only = part({ total_requests: 7, avg_routing_time_ms: 1.5 }, { routed: 3 })
    expect(mergeMetrics([only])).toBe(only.metrics)
  })

  it("adds up the counts, key by key, including keys only one worker has", () => {
    const merged = mergeMetrics([
      part({
        total_requests: 10,
        routing_decisions: { r1: 4, r2: 6 },
        fallback_decisions: 1,
        panic_decisions: 2,
        retries: 3,
        retries_denied: 1,
        responses: { "1xx": 0, "2xx": 8, "3xx": 0, "4xx": 1, "5xx": 1 },
        failures: { ...metrics().failures, upstream_error: 2, no_route: 1 },
        load_reports_rejected: 1,
        locality: { local: 5, spilled: 1 },
        leases: { acquired: 10, released: 8, expired: 1, active: 1 },
        ejections: 1,
        agent_poll_failures: { "node-a": 2 },
        queue: { length: 1, queued: 5, served: 4, full: 1, timed_out: 0, abandoned: 0 },
        store: { outages: 1, redis_errors: 3, local_decisions: 2, unavailable_decisions: 0 },
      }),
      part({
        total_requests: 20,
        routing_decisions: { r2: 1, r3: 19 },
        retries: 4,
        responses: { "1xx": 0, "2xx": 17, "3xx": 1, "4xx": 0, "5xx": 2 },
        failures: { ...metrics().failures, upstream_error: 1, queue_full: 3 },
        locality: { local: 7, spilled: 2 },
        leases: { acquired: 20, released: 19, expired: 0, active: 1 },
        ejections: 2,
        agent_poll_failures: { "node-a": 1, "node-b": 5 },
        queue: { length: 2, queued: 3, served: 1, full: 0, timed_out: 1, abandoned: 1 },
        store: { outages: 0, redis_errors: 2, local_decisions: 0, unavailable_decisions: 4 },
      }),
    ])

    expect(merged.total_requests).toBe(30)
    expect(merged.routing_decisions).toEqual({ r1: 4, r2: 7, r3: 19 })
    expect(merged.fallback_decisions).toBe(1)
    expect(merged.panic_decisions).toBe(2)
    expect(merged.retries).toBe(7)
    expect(merged.retries_denied).toBe(1)
    expect(merged.responses).toEqual({ "1xx": 0, "2xx": 25, "3xx": 1, "4xx": 1, "5xx": 3 })
    expect(merged.failures).toEqual({ ...metrics().failures, upstream_error: 3, queue_full: 3, no_route: 1 })
    expect(merged.load_reports_rejected).toBe(1)
    expect(merged.locality).toEqual({ local: 12, spilled: 3 })
    expect(merged.leases).toEqual({ acquired: 30, released: 27, expired: 1, active: 2 })
    expect(merged.ejections).toBe(3)
    expect(merged.agent_poll_failures).toEqual({ "node-a": 3, "node-b": 5 })
    expect(merged.limits.queue).toEqual({
      length: 3,
      queued: 8,
      served: 5,
      full: 1,
      timed_out: 1,
      abandoned: 1,
      avg_wait_ms: 0,
    })
    expect(merged.limits.rate_limit_store).toEqual({
      backend: "memory",
      degraded: false,
      outages: 1,
      redis_errors: 5,
      local_decisions: 2,
      unavailable_decisions: 4,
    })
  })

  it("adds up each route's counts, and keeps a route only one worker has", () => {
    const merged = mergeMetrics([
      part({ routes: { api: route({ total_requests: 5, routing_decisions: { r1: 2, r2: 3 } }) } }),
      part({
        routes: {
          api: route({ total_requests: 6, routing_decisions: { r2: 6 } }),
          web: route({ algorithm: "metrics", total_requests: 9, routing_decisions: { w1: 9 } }),
        },
      }),
    ])

    expect(merged.routes.api?.total_requests).toBe(11)
    expect(merged.routes.api?.routing_decisions).toEqual({ r1: 2, r2: 9 })
    expect(merged.routes.web?.algorithm).toBe("metrics")
    expect(merged.routes.web?.total_requests).toBe(9)
    expect(merged.routes.web?.routing_decisions).toEqual({ w1: 9 })
  })

  it("sums requests per second, rounded to 2 decimals", () => {
    const merged = mergeMetrics([part({ requests_per_second: 1.234 }), part({ requests_per_second: 2.345 })])
    expect(merged.requests_per_second).toBe(3.58)
  })

  it("takes the longest uptime, not the sum", () => {
    const merged = mergeMetrics([
      part({ uptime_seconds: 120 }),
      part({ uptime_seconds: 300 }),
      part({ uptime_seconds: 200 }),
    ])
    expect(merged.uptime_seconds).toBe(300)
  })

  it("raises a flag any worker raises, and keeps the first worker's text", () => {
    const merged = mergeMetrics([
      part({ algorithm: "hybrid", store: { backend: "redis", degraded: false } }),
      part({ algorithm: "lease", store: { backend: "memory", degraded: true } }),
      part({ algorithm: "lease", store: { backend: "memory", degraded: false } }),
    ])
    expect(merged.algorithm).toBe("hybrid")
    expect(merged.limits.rate_limit_store.backend).toBe("redis")
    expect(merged.limits.rate_limit_store.degraded).toBe(true)

    const calm = mergeMetrics([part(), part()])
    expect(calm.limits.rate_limit_store.degraded).toBe(false)
  })

  it("adds up the rate limits where some workers have none", () => {
    const limited = rateLimit({ admitted: 5, limited: 2, unknown_key: 1, unavailable: 0 })
    const alsoLimited = rateLimit({ admitted: 3, limited: 1, unknown_key: 0, unavailable: 4 })

    expect(
      mergeMetrics([part({ rate_limit: null }), part({ rate_limit: limited })]).limits.rate_limit,
    ).toEqual(limited)
    expect(
      mergeMetrics([part({ rate_limit: limited }), part({ rate_limit: null })]).limits.rate_limit,
    ).toEqual(limited)
    expect(
      mergeMetrics([
        part({ rate_limit: limited }),
        part({ rate_limit: null }),
        part({ rate_limit: alsoLimited }),
      ]).limits.rate_limit,
    ).toEqual({ admitted: 8, limited: 3, unknown_key: 1, unavailable: 4 })
    expect(mergeMetrics([part(), part()]).limits.rate_limit).toBeNull()
  })

  it("adds up a route's rate limit where only some workers have one", () => {
    const merged = mergeMetrics([
      part({ routes: { api: route({ rate_limit: null }) } }),
      part({ routes: { api: route({ rate_limit: rateLimit({ admitted: 4, limited: 1 }) }) } }),
      part({ routes: { api: route({ rate_limit: rateLimit({ admitted: 6 }) }) } }),
    ])
    expect(merged.routes.api?.limits.rate_limit).toEqual(rateLimit({ admitted: 10, limited: 1 }))
  })

  describe("averages, recombined as means weighted by what each averages over", () => {
    it("weights the routing time by the decisions each worker timed", () => {
      // (1 ms × 100 + 4 ms × 300) / 400; the plain mean of the means would be 2.5.
      const merged = mergeMetrics([
        part({ avg_routing_time_ms: 1 }, { routed: 100 }),
        part({ avg_routing_time_ms: 4 }, { routed: 300 }),
      ])
      expect(merged.avg_routing_time_ms).toBe(3.25)
    })

    it("ignores a worker that timed no decisions", () => {
      const merged = mergeMetrics([
        part({ avg_routing_time_ms: 0 }, { routed: 0 }),
        part({ avg_routing_time_ms: 4 }, { routed: 300 }),
      ])
      expect(merged.avg_routing_time_ms).toBe(4)
    })

    it("gives a routing time of 0 when no worker timed a decision", () => {
      const merged = mergeMetrics([part(), part()])
      expect(merged.avg_routing_time_ms).toBe(0)
    })

    it("weights the cache hit rate by the decisions that read metrics", () => {
      // (0.5 × 10 + 1 × 30) / 40
      const merged = mergeMetrics([
        part({ cache_hit_rate: 0.5 }, { metricsDecisions: 10 }),
        part({ cache_hit_rate: 1 }, { metricsDecisions: 30 }),
      ])
      expect(merged.cache_hit_rate).toBe(0.875)
    })

    it("gives no cache hit rate while no worker read metrics, and one worker's once it has", () => {
      const none = mergeMetrics([
        part({ cache_hit_rate: null }, { metricsDecisions: 0 }),
        part({ cache_hit_rate: null }, { metricsDecisions: 0 }),
      ])
      expect(none.cache_hit_rate).toBeNull()

      const one = mergeMetrics([
        part({ cache_hit_rate: null }, { metricsDecisions: 0 }),
        part({ cache_hit_rate: 0.75 }, { metricsDecisions: 40 }),
      ])
      expect(one.cache_hit_rate).toBe(0.75)
    })

    it("weights the queue wait by the requests that left each worker's queues", () => {
      // (10 ms × 1 + 20 ms × 3) / 4; the plain mean of the means would be 15.
      const merged = mergeMetrics([
        part({ queue: { avg_wait_ms: 10 } }, { queueExits: 1 }),
        part({ queue: { avg_wait_ms: 20 } }, { queueExits: 3 }),
      ])
      expect(merged.limits.queue.avg_wait_ms).toBe(17.5)
    })

    it("weights each route's queue wait by that route's exits, with a route only one worker has", () => {
      // The routes' weights differ from the workers' totals: using those would give api
      // (2 × 100 + 6 × 1) / 101 instead of (2 × 3 + 6 × 1) / 4.
      const merged = mergeMetrics([
        part(
          { routes: { api: route({ queue: { avg_wait_ms: 2 } }) } },
          { queueExits: 100, routeQueueExits: { api: 3 } },
        ),
        part(
          {
            routes: {
              api: route({ queue: { avg_wait_ms: 6 } }),
              web: route({ queue: { avg_wait_ms: 8 } }),
            },
          },
          { queueExits: 1, routeQueueExits: { api: 1, web: 2 } },
        ),
      ])
      expect(merged.routes.api?.limits.queue.avg_wait_ms).toBe(3)
      expect(merged.routes.web?.limits.queue.avg_wait_ms).toBe(8)
    })

    it("ignores a worker whose route's queue nobody left", () => {
      const merged = mergeMetrics([
        part({ routes: { api: route({ queue: { avg_wait_ms: 0 } }) } }, { routeQueueExits: { api: 0 } }),
        part(
          { routes: { api: route({ queue: { avg_wait_ms: 6 } }) } },
          { queueExits: 2, routeQueueExits: { api: 2 } },
        ),
      ])
      expect(merged.routes.api?.limits.queue.avg_wait_ms).toBe(6)
    })
  })
})

// --- /_lb/replicas ---

describe("mergeReplicas", () => {
  it("returns a single worker's replicas unchanged", () => {
    const only = [replica({ id: "r1" }), replica({ id: "r2" })]
    expect(mergeReplicas([only])).toBe(only)
  })

  it("lists each replica of each route once, in the order first seen", () => {
    const merged = mergeReplicas([
      [replica({ route: "api", id: "r1" }), replica({ route: "api", id: "r2" })],
      [
        replica({ route: "api", id: "r2" }),
        replica({ route: "web", id: "r1" }),
        replica({ route: "api", id: "r3" }),
      ],
    ])
    expect(merged.map(({ route, id }) => `${route}/${id}`)).toEqual(["api/r1", "api/r2", "web/r1", "api/r3"])
  })

  it("lists a replica only one worker knows with that worker's figures", () => {
    const known = replica({
      route: "web",
      id: "w1",
      healthy: false,
      picks: 7,
      metrics: sample(50, 33),
      score: 0.4,
    })
    const merged = mergeReplicas([[replica({ id: "r1" })], [replica({ id: "r1" }), known]])
    expect(merged).toHaveLength(2)
    expect(merged[1]).toEqual(known)
  })

  it("finds a replica healthy only when every worker does", () => {
    const merged = mergeReplicas([
      [
        replica({ id: "down-later", healthy: true }),
        replica({ id: "down-first", healthy: false }),
        replica({ id: "up" }),
      ],
      [
        replica({ id: "down-later", healthy: false }),
        replica({ id: "down-first", healthy: true }),
        replica({ id: "up" }),
      ],
    ])
    expect(merged.map(({ id, healthy }) => [id, healthy])).toEqual([
      ["down-later", false],
      ["down-first", false],
      ["up", true],
    ])
  })

  it("takes the most consecutive failures, the first error, and ejected if any worker ejected it", () => {
    const [merged] = mergeReplicas([
      [replica({ consecutive_failures: 2, last_error: null, ejected: false })],
      [replica({ consecutive_failures: 5, last_error: "timeout", ejected: true })],
      [replica({ consecutive_failures: 1, last_error: "connection refused", ejected: false })],
    ])
    expect(merged?.consecutive_failures).toBe(5)
    expect(merged?.last_error).toBe("timeout")
    expect(merged?.ejected).toBe(true)
  })

  it("adds up ejections, active leases and picks", () => {
    const [merged] = mergeReplicas([
      [replica({ ejections: 1, active_leases: 2, picks: 10 })],
      [replica({ ejections: 0, active_leases: 3, picks: 20 })],
      [replica({ ejections: 2, active_leases: 0, picks: 5 })],
    ])
    expect(merged).toMatchObject({ ejections: 3, active_leases: 5, picks: 35 })
  })

  it("carries the freshest metrics any worker holds, with their score", () => {
    const [merged] = mergeReplicas([
      [replica({ metrics: sample(900, 90), score: 0.9 })],
      [replica({ metrics: sample(100, 10), score: 0.1 })],
      [replica({ metrics: sample(500, 50), score: 0.5 })],
    ])
    expect(merged?.metrics).toEqual(sample(100, 10))
    expect(merged?.score).toBe(0.1)
  })

  it("carries the metrics of the one worker that has any, with their score", () => {
    const [first] = mergeReplicas([
      [replica({ metrics: sample(300, 30), score: 0.3 })],
      [replica({ metrics: null, score: null })],
    ])
    expect(first?.metrics).toEqual(sample(300, 30))
    expect(first?.score).toBe(0.3)

    const [second] = mergeReplicas([
      [replica({ metrics: null, score: null })],
      [replica({ metrics: sample(300, 30), score: 0.3 })],
    ])
    expect(second?.metrics).toEqual(sample(300, 30))
    expect(second?.score).toBe(0.3)

    const [neither] = mergeReplicas([[replica()], [replica()]])
    expect(neither?.metrics).toBeNull()
    expect(neither?.score).toBeNull()
  })

  it("carries the freshest load report, one of unknown age losing to one of known age", () => {
    const [freshest] = mergeReplicas([
      [replica({ load_report: loadReport(300, 3) })],
      [replica({ load_report: loadReport(100, 1) })],
      [replica({ load_report: null })],
    ])
    expect(freshest?.load_report).toEqual(loadReport(100, 1))

    const [aged] = mergeReplicas([
      overTheWire([replica({ load_report: loadReport(undefined, 9) })]),
      overTheWire([replica({ load_report: loadReport(2000, 2) })]),
    ])
    expect(aged?.load_report?.rps).toBe(2)

    const [only] = mergeReplicas([
      [replica({ load_report: null })],
      [replica({ load_report: loadReport(50, 5) })],
    ])
    expect(only?.load_report).toEqual(loadReport(50, 5))
  })
})

// --- /_lb/health ---

describe("mergeHealth", () => {
  it("returns a single worker's health unchanged", () => {
    const only = degradedBy("rate_limit_redis_unreachable")
    expect(mergeHealth([only], 0)).toBe(only)
  })

  it("is ok when every worker is, counting the workers and the replicas healthy everywhere", () => {
    const merged = mergeHealth(
      [
        health({ algorithm: "hybrid", replicas_known: 3, replicas_healthy: 3 }),
        health({ algorithm: "lease", replicas_known: 5, replicas_healthy: 4 }),
      ],
      2,
    )
    expect(merged).toEqual({
      status: "ok",
      algorithm: "hybrid",
      workers: 2,
      replicas_known: 5,
      replicas_healthy: 2,
    })
    expect(merged).not.toHaveProperty("degraded")
  })

  it("is degraded when any worker is, with every worker's reasons once", () => {
    const merged = mergeHealth(
      [
        health({ replicas_known: 2, replicas_healthy: 2 }),
        { ...degradedBy("rate_limit_redis_unreachable"), replicas_known: 2, replicas_healthy: 1 },
        { ...degradedBy("rate_limit_redis_unreachable", "other"), replicas_known: 2, replicas_healthy: 2 },
      ],
      1,
    )
    expect(merged).toEqual({
      status: "degraded",
      algorithm: "lease",
      workers: 3,
      replicas_known: 2,
      replicas_healthy: 1,
      degraded: ["rate_limit_redis_unreachable", "other"],
    })
  })
})

// --- the weights each worker sends with its metrics ---

describe("averageWeightsOf", () => {
  /** Only what the weights are read from: a route's timed decisions, metrics reads and queue exits. */
  const cluster = (name: string, routed: number, decisions: number, exits: number) =>
    ({
      route: { name },
      stats: {
        routingTimes: () => ({ count: routed }),
        metricsReads: () => ({ decisions, fresh: 0 }),
      },
      router: { queue: () => ({ waitTimes: { count: exits } }) },
    }) as unknown as Cluster

  it("adds up every route's counts, and keeps each route's queue exits", () => {
    expect(averageWeightsOf([cluster("api", 10, 4, 3), cluster("web", 5, 1, 2)])).toEqual({
      routed: 15,
      metricsDecisions: 5,
      queueExits: 5,
      routeQueueExits: { api: 3, web: 2 },
    })
  })
})
