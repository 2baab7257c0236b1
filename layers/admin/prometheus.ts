/** The balancer's Prometheus exposition (`GET /_lb/metrics`): what it routed, and each replica's state. */
import { Effect } from "effect"
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client"
import { OUTCOMES } from "../../src/Endpoint.ts"
import { QUEUE_WAIT_BOUNDS_SECONDS } from "../../src/limits/wait-times.ts"
import { RateLimitStore } from "../../src/RateLimitStore.ts"
import { type Cluster, RouteTable } from "../../src/RouteTable.ts"
import { ROUTING_TIME_BOUNDS_SECONDS, type RoutingTimes, type StatsSnapshot } from "../../src/RoutingStats.ts"
import type { GaugeAggregation } from "./merge-exposition.ts"
import type { EndpointView } from "./read-model.ts"

export const PROMETHEUS_PATH = "/_lb/metrics"

const REPLICA_LABELS = ["route", "replica", "replica_id"] as const

const labelsOf = ({ route, endpoint }: EndpointView) => ({
  route,
  replica: endpoint.replica.name,
  replica_id: endpoint.id,
})

/**
 * Process metrics belong to the process, not to one balancer: one set however many balancers a process
 * runs (tests run several), created on the first scrape so a balancer never scraped pays nothing.
 */
let processRegistry: Registry | undefined
const processMetrics = (): Registry => {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/**
 * How each gauge of several workers (`LB_WORKERS`) becomes the balancer's: in-flight counts add up;
 * a replica is healthy only if every worker finds it so; the ages are the freshest any worker has;
 * reported load and scores are the highest, the cautious reading. Counters and histograms add up.
 */
export const GAUGE_AGGREGATION: Readonly<Record<string, GaugeAggregation>> = {
  swarmguard_lb_queue_length: "sum",
  swarmguard_lb_active_leases: "sum",
  swarmguard_lb_rate_limit_redis_degraded: "max",
  swarmguard_lb_replica_healthy: "min",
  swarmguard_lb_replica_ejected: "max",
  swarmguard_lb_replica_metrics_age_seconds: "min",
  swarmguard_lb_replica_load_report_age_seconds: "min",
  swarmguard_lb_replica_reported_cpu_utilization: "max",
  swarmguard_lb_replica_reported_in_flight: "max",
  swarmguard_lb_replica_load_score: "max",
}

const ROUTING_TIME = "swarmguard_lb_routing_decision_seconds"
const QUEUE_WAIT = "swarmguard_lb_queue_wait_seconds"

interface HistogramRow {
  /** Already in the text format: `route="api",algorithm="lease"`. */
  readonly labels: string
  readonly times: RoutingTimes
}

/**
 * A histogram family in the text format. RoutingStats and the queues keep their buckets as plain
 * numbers on the data plane (prom-client's `observe` allocates per call and has no way to load counts
 * kept elsewhere), so these families are written here at scrape time.
 */
const histogramText = (
  name: string,
  help: string,
  bounds: ReadonlyArray<number>,
  rows: ReadonlyArray<HistogramRow>,
): string => {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`]
  for (const { labels, times } of rows) {
    const { bucketCounts, sumSeconds, count } = times
    let cumulative = 0
    bounds.forEach((bound, i) => {
      cumulative += bucketCounts[i]!
      lines.push(`${name}_bucket{le="${bound}",${labels}} ${cumulative}`)
    })
    lines.push(`${name}_bucket{le="+Inf",${labels}} ${count}`)
    lines.push(`${name}_sum{${labels}} ${sumSeconds}`)
    lines.push(`${name}_count{${labels}} ${count}`)
  }
  return `${lines.join("\n")}\n`
}

// Route names are letters, digits, `_`, `.` and `-` only: nothing to escape in the labels below.
const histogramsText = (clusters: ReadonlyArray<Cluster>): string =>
  histogramText(
    ROUTING_TIME,
    "Time the selector took to choose a replica",
    ROUTING_TIME_BOUNDS_SECONDS,
    clusters.map(({ route, algorithm, stats }) => ({
      labels: `route="${route.name}",algorithm="${algorithm}"`,
      times: stats.routingTimes(),
    })),
  ) +
  histogramText(
    QUEUE_WAIT,
    "Time requests waited in the queue for a replica below REPLICA_MAX_REQUESTS",
    QUEUE_WAIT_BOUNDS_SECONDS,
    clusters.map(({ route, router }) => ({
      labels: `route="${route.name}"`,
      times: router.queue().waitTimes,
    })),
  )

/** The content type of the exposition: Prometheus's text format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE

/** Returns the exposition's writer, reading the endpoints through `readEndpoints` at each scrape. */
export const makePrometheus = (readEndpoints: () => ReadonlyArray<EndpointView>) =>
  Effect.gen(function* () {
    const routes = yield* RouteTable
    const rateLimits = yield* RateLimitStore
    const registry = new Registry()
    /** One read of the endpoints and one of each route's stats per scrape, shared by every family. */
    let views: ReadonlyArray<EndpointView> = []
    let snapshots: ReadonlyArray<{ readonly cluster: Cluster; readonly snapshot: StatsSnapshot }> = []

    new Counter({
      name: "swarmguard_lb_requests_total",
      help: "Attempts routed to each replica, by how they ended: status class, error (no response), aborted (client left first)",
      labelNames: [...REPLICA_LABELS, "status_class", "algorithm"],
      registers: [registry],
      // Counted as plain numbers on the data plane; copied into series at scrape time.
      collect() {
        this.reset()
        for (const view of views) {
          const { endpoint, algorithm } = view
          if (endpoint.picks === 0) continue
          OUTCOMES.forEach((outcome, i) => {
            const labels = { ...labelsOf(view), status_class: outcome, algorithm }
            this.inc(labels, endpoint.outcomes[i]!)
          })
        }
      },
    })

    /** Counters of each route, labelled with its algorithm. */
    const totals: ReadonlyArray<
      readonly [name: string, help: string, read: (snapshot: StatsSnapshot, cluster: Cluster) => number]
    > = [
      [
        "swarmguard_lb_fallback_decisions_total",
        "Decisions the algorithm could not make (metrics missing or stale) and its fallback made",
        (snapshot) => snapshot.fallback_decisions,
      ],
      [
        "swarmguard_lb_panic_decisions_total",
        "Decisions made among every replica because too few were healthy",
        (snapshot) => snapshot.panic_decisions,
      ],
      [
        "swarmguard_lb_retries_total",
        "Idempotent requests sent to another replica after the first failed before answering",
        (snapshot) => snapshot.retries,
      ],
      [
        "swarmguard_lb_retries_denied_total",
        "Retries the retry budget (RETRY_BUDGET, RETRY_BURST) did not allow",
        (snapshot) => snapshot.retries_denied,
      ],
      [
        "swarmguard_lb_local_decisions_total",
        "Decisions LOCALITY kept on the replicas of this balancer's node or zone",
        (snapshot) => snapshot.locality.local,
      ],
      [
        "swarmguard_lb_spilled_decisions_total",
        "Decisions LOCALITY let go past local replicas that were too loaded",
        (snapshot) => snapshot.locality.spilled,
      ],
      [
        "swarmguard_lb_load_reports_rejected_total",
        "endpoint-load-metrics headers that were not a load report, and were not used",
        (snapshot) => snapshot.load_reports_rejected,
      ],
      [
        "swarmguard_lb_ejections_total",
        "Replicas taken out of rotation after failing requests in a row",
        (_, { outliers }) => outliers.totalEjections(),
      ],
    ]
    for (const [name, help, read] of totals) {
      new Counter({
        name,
        help,
        labelNames: ["route", "algorithm"],
        registers: [registry],
        collect() {
          this.reset()
          for (const { cluster, snapshot } of snapshots) {
            this.inc({ route: cluster.route.name, algorithm: cluster.algorithm }, read(snapshot, cluster))
          }
        },
      })
    }

    new Counter({
      name: "swarmguard_lb_agent_poll_failures_total",
      help: "Agent polls that failed: no answer in time, a bad status, or a report its Schema rejected",
      labelNames: ["node"],
      registers: [registry],
      collect() {
        this.reset()
        const failures = routes.agentMetrics()?.pollFailures() ?? {}
        for (const [node, count] of Object.entries(failures)) this.inc({ node }, count)
      },
    })

    new Counter({
      name: "swarmguard_lb_failures_total",
      help: "Requests the balancer could not complete, by why (no_route: no route's rule matched)",
      labelNames: ["route", "kind"],
      registers: [registry],
      collect() {
        this.reset()
        for (const { cluster, snapshot } of snapshots) {
          for (const [kind, count] of Object.entries(snapshot.failures)) {
            if (kind !== "no_route") this.inc({ route: cluster.route.name, kind }, count)
          }
        }
        this.inc({ route: "", kind: "no_route" }, routes.noRouteCount())
      },
    })

    /** A family with one series per route and label value, read from each cluster at scrape time. */
    const perRoute = (
      kind: typeof Counter | typeof Gauge,
      name: string,
      help: string,
      label: string | undefined,
      read: (cluster: Cluster) => ReadonlyArray<readonly [value: string, count: number]>,
    ) =>
      new kind({
        name,
        help,
        labelNames: label === undefined ? ["route"] : ["route", label],
        registers: [registry],
        collect(this: Counter | Gauge) {
          this.reset()
          for (const { cluster } of snapshots) {
            for (const [value, count] of read(cluster)) {
              const labels =
                label === undefined
                  ? { route: cluster.route.name }
                  : { route: cluster.route.name, [label]: value }
              if (this instanceof Counter) this.inc(labels, count)
              else this.set(labels, count)
            }
          }
        },
      })
    perRoute(
      Gauge,
      "swarmguard_lb_queue_length",
      "Requests waiting for a replica below REPLICA_MAX_REQUESTS",
      undefined,
      ({ router }) => [["", router.queue().length]],
    )
    perRoute(
      Counter,
      "swarmguard_lb_queue_rejections_total",
      "Requests answered 503 for capacity: the queue was full, or the wait passed QUEUE_TIMEOUT",
      "reason",
      ({ router }) => {
        const { counts } = router.queue()
        return [
          ["full", counts.full],
          ["timeout", counts.timedOut],
        ]
      },
    )
    perRoute(
      Counter,
      "swarmguard_lb_queue_abandoned_total",
      "Queued requests whose client went away before a replica had room",
      undefined,
      ({ router }) => [["", router.queue().counts.abandoned]],
    )
    perRoute(
      Counter,
      "swarmguard_lb_rate_limit_decisions_total",
      "Client rate-limit decisions: admitted, limited (429), unavailable (503, Redis unreachable with RATE_LIMIT_ON_REDIS_ERROR=deny)",
      "decision",
      ({ rateLimiter }) => {
        if (rateLimiter === undefined) return []
        const { admitted, limited, unavailable } = rateLimiter.counts()
        return [
          ["admitted", admitted],
          ["limited", limited],
          ["unavailable", unavailable],
        ]
      },
    )
    perRoute(
      Counter,
      "swarmguard_lb_rate_limit_unknown_key_total",
      "Requests without the RATE_LIMIT_KEY header, counted in the shared unknown budget",
      undefined,
      ({ rateLimiter }) => (rateLimiter === undefined ? [] : [["", rateLimiter.counts().unknownKey]]),
    )
    const storeFamilies: ReadonlyArray<
      readonly [kind: typeof Counter | typeof Gauge, name: string, help: string, read: () => number]
    > = [
      [
        Gauge,
        "swarmguard_lb_rate_limit_redis_degraded",
        "1 while Redis is unreachable and rate limits are not shared",
        () => (rateLimits.status().degraded ? 1 : 0),
      ],
      [
        Counter,
        "swarmguard_lb_rate_limit_redis_outages_total",
        "Times Redis became unreachable",
        () => rateLimits.status().outages,
      ],
      [
        Counter,
        "swarmguard_lb_rate_limit_redis_errors_total",
        "Redis calls that failed or passed RATE_LIMIT_REDIS_TIMEOUT",
        () => rateLimits.status().redisErrors,
      ],
      [
        Counter,
        "swarmguard_lb_rate_limit_local_decisions_total",
        "Decisions this balancer took alone while Redis was unreachable",
        () => rateLimits.status().localDecisions,
      ],
    ]
    for (const [kind, name, help, read] of storeFamilies) {
      new kind({
        name,
        help,
        registers: [registry],
        collect(this: Counter | Gauge) {
          this.reset()
          if (this instanceof Counter) this.inc(read())
          else this.set(read())
        },
      })
    }

    /**
     * A gauge with a value for every known replica (`read` undefined: none for that one). Refilled at
     * every scrape, so replicas that left the service disappear from the exposition.
     */
    const perReplica = (name: string, help: string, read: (replica: EndpointView) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: REPLICA_LABELS,
        registers: [registry],
        collect() {
          this.reset()
          for (const view of views) {
            const value = read(view)
            if (value !== undefined) this.set(labelsOf(view), value)
          }
        },
      })
    perReplica(
      "swarmguard_lb_active_leases",
      "Requests in flight to each replica",
      ({ endpoint }) => endpoint.active,
    )
    perReplica(
      "swarmguard_lb_replica_healthy",
      "1 while the replica is healthy, 0 while it is out",
      ({ endpoint }) => (endpoint.health.healthy ? 1 : 0),
    )
    perReplica(
      "swarmguard_lb_replica_ejected",
      "1 while the replica is ejected for failing requests in a row, 0 otherwise",
      ({ endpoint }) => (endpoint.ejected ? 1 : 0),
    )
    perReplica(
      "swarmguard_lb_replica_metrics_age_seconds",
      "Age of the replica's latest resource sample (replicas with metrics only)",
      ({ sample }) => (sample === undefined ? undefined : sample.ageMs / 1000),
    )
    perReplica(
      "swarmguard_lb_replica_load_report_age_seconds",
      "Age of the load the replica last reported itself (endpoint-load-metrics; replicas that report only)",
      ({ loadReportAgeMs }) => (loadReportAgeMs === undefined ? undefined : loadReportAgeMs / 1000),
    )
    perReplica(
      "swarmguard_lb_replica_reported_cpu_utilization",
      "CPU use the replica last reported, as a share of its allowance (replicas that report it only)",
      ({ endpoint }) => endpoint.loadReport?.report.cpuUtilization,
    )
    perReplica(
      "swarmguard_lb_replica_reported_in_flight",
      "Requests in flight the replica last reported (named_metrics.rif; replicas that report it only)",
      ({ endpoint }) => endpoint.loadReport?.report.named.rif,
    )
    perReplica(
      "swarmguard_lb_replica_load_score",
      "The PRD's weighted load score of the replica's latest sample (replicas with metrics only)",
      ({ sample }) => sample?.score,
    )

    /** The exposition text: the balancer's families, then the process's. */
    return async (): Promise<string> => {
      views = readEndpoints()
      const clusters = routes.clusters()
      snapshots = clusters.map((cluster) => ({ cluster, snapshot: cluster.stats.snapshot() }))
      const families = await registry.metrics()
      const processFamilies = await processMetrics().metrics()
      return `${families}\n${histogramsText(clusters)}\n${processFamilies}`
    }
  })
