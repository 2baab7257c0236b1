/** The balancer's Prometheus exposition (`GET /_lb/metrics`): what it routed, and each replica's state. */
import { Effect } from "effect"
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client"
import { OUTCOMES } from "../../src/Endpoint.ts"
import { type Cluster, RouteTable } from "../../src/RouteTable.ts"
import { ROUTING_TIME_BOUNDS_SECONDS, type RoutingTimes, type StatsSnapshot } from "../../src/RoutingStats.ts"
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

const ROUTING_TIME = "swarmguard_lb_routing_decision_seconds"

/**
 * The routing-time histogram in the text format. RoutingStats keeps its buckets as plain numbers on
 * the data plane (prom-client's `observe` allocates per call and has no way to load counts kept
 * elsewhere), so the family is written here at scrape time.
 */
const routingTimeText = (clusters: ReadonlyArray<Cluster>): string => {
  const lines = [
    `# HELP ${ROUTING_TIME} Time the selector took to choose a replica`,
    `# TYPE ${ROUTING_TIME} histogram`,
  ]
  for (const { route, algorithm, stats } of clusters) {
    const { bucketCounts, sumSeconds, count }: RoutingTimes = stats.routingTimes()
    // Route names are letters, digits, `_`, `.` and `-` only: nothing to escape.
    const labels = `route="${route.name}",algorithm="${algorithm}"`
    let cumulative = 0
    ROUTING_TIME_BOUNDS_SECONDS.forEach((bound, i) => {
      cumulative += bucketCounts[i]!
      lines.push(`${ROUTING_TIME}_bucket{le="${bound}",${labels}} ${cumulative}`)
    })
    lines.push(`${ROUTING_TIME}_bucket{le="+Inf",${labels}} ${count}`)
    lines.push(`${ROUTING_TIME}_sum{${labels}} ${sumSeconds}`)
    lines.push(`${ROUTING_TIME}_count{${labels}} ${count}`)
  }
  return `${lines.join("\n")}\n`
}

/** The content type of the exposition: Prometheus's text format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE

/** Returns the exposition's writer, reading the endpoints through `readEndpoints` at each scrape. */
export const makePrometheus = (readEndpoints: () => ReadonlyArray<EndpointView>) =>
  Effect.gen(function* () {
    const routes = yield* RouteTable
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
      return `${families}\n${routingTimeText(clusters)}\n${processFamilies}`
    }
  })
