/** The balancer's Prometheus exposition (`GET /_lb/metrics`): what it routed, and each replica's state. */
import { Effect } from "effect"
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client"
import { LbConfig } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { Replica } from "../../src/domain/Replica.ts"
import { HealthProbe } from "../../src/HealthProbe.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { MetricsSource } from "../../src/MetricsSource.ts"
import { OutlierDetector } from "../../src/OutlierDetector.ts"
import {
  OUTCOMES,
  ROUTING_TIME_BOUNDS_SECONDS,
  RoutingStats,
  type RoutingTimes,
} from "../../src/RoutingStats.ts"
import { Selector } from "../../src/Selector.ts"
import { loadScore } from "../../src/score.ts"

export const PROMETHEUS_PATH = "/_lb/metrics"

const REPLICA_LABELS = ["replica", "replica_id"] as const

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
const routingTimeText = (algorithm: string, { bucketCounts, sumSeconds, count }: RoutingTimes): string => {
  const lines = [
    `# HELP ${ROUTING_TIME} Time the selector took to choose a replica`,
    `# TYPE ${ROUTING_TIME} histogram`,
  ]
  let cumulative = 0
  ROUTING_TIME_BOUNDS_SECONDS.forEach((bound, i) => {
    cumulative += bucketCounts[i]!
    lines.push(`${ROUTING_TIME}_bucket{le="${bound}",algorithm="${algorithm}"} ${cumulative}`)
  })
  lines.push(`${ROUTING_TIME}_bucket{le="+Inf",algorithm="${algorithm}"} ${count}`)
  lines.push(`${ROUTING_TIME}_sum{algorithm="${algorithm}"} ${sumSeconds}`)
  lines.push(`${ROUTING_TIME}_count{algorithm="${algorithm}"} ${count}`)
  return `${lines.join("\n")}\n`
}

/** The content type of the exposition: Prometheus's text format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE

export const makePrometheus = Effect.gen(function* () {
  const config = yield* LbConfig
  const discovery = yield* Discovery
  const health = yield* HealthProbe
  const leases = yield* LeaseStore
  const metrics = yield* MetricsSource
  const outliers = yield* OutlierDetector
  const stats = yield* RoutingStats
  const { algorithm } = yield* Selector
  const clock = yield* Effect.clock
  const registry = new Registry()

  new Counter({
    name: "swarmguard_lb_requests_total",
    help: "Attempts routed to each replica, by how they ended: status class, error (no response), aborted (client left first)",
    labelNames: [...REPLICA_LABELS, "status_class", "algorithm"],
    registers: [registry],
    // Counted as plain numbers on the data plane; copied into series at scrape time.
    collect() {
      this.reset()
      for (const counts of stats.replicaCounts()) {
        OUTCOMES.forEach((outcome, i) => {
          const labels = { replica: counts.name, replica_id: counts.id, status_class: outcome, algorithm }
          this.inc(labels, counts.outcomes[i]!)
        })
      }
    },
  })

  const perDecision = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      labelNames: ["algorithm"],
      registers: [registry],
      collect() {
        this.reset()
        this.inc({ algorithm }, read())
      },
    })
  // The snapshot is cheap: these three read it once each per scrape.
  perDecision(
    "swarmguard_lb_fallback_decisions_total",
    "Decisions the algorithm could not make (metrics missing or stale) and its fallback made",
    () => stats.snapshot().fallback_decisions,
  )
  perDecision(
    "swarmguard_lb_panic_decisions_total",
    "Decisions made among every replica because too few were healthy",
    () => stats.snapshot().panic_decisions,
  )
  perDecision(
    "swarmguard_lb_retries_total",
    "Idempotent requests sent to another replica after the first failed before answering",
    () => stats.snapshot().retries,
  )

  perDecision(
    "swarmguard_lb_retries_denied_total",
    "Retries the retry budget (RETRY_BUDGET, RETRY_BURST) did not allow",
    () => stats.snapshot().retries_denied,
  )
  perDecision(
    "swarmguard_lb_ejections_total",
    "Replicas taken out of rotation after failing requests in a row",
    outliers.totalEjections,
  )

  new Counter({
    name: "swarmguard_lb_agent_poll_failures_total",
    help: "Agent polls that failed: no answer in time, a bad status, or a report its Schema rejected",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset()
      for (const [node, count] of Object.entries(metrics.pollFailures())) this.inc({ node }, count)
    },
  })

  new Counter({
    name: "swarmguard_lb_failures_total",
    help: "Requests the balancer could not complete, by why",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      this.reset()
      for (const [kind, count] of Object.entries(stats.snapshot().failures)) this.inc({ kind }, count)
    },
  })

  const perReplica = (name: string, help: string, fill: (gauge: Gauge<"replica" | "replica_id">) => void) =>
    new Gauge({
      name,
      help,
      labelNames: REPLICA_LABELS,
      registers: [registry],
      // Refilled at every scrape, so replicas that left the service disappear from the exposition.
      collect() {
        this.reset()
        fill(this)
      },
    })

  /** A gauge with a value for every known replica. */
  const everyReplica = (name: string, help: string, read: (replica: Replica) => number) =>
    perReplica(name, help, (gauge) => {
      for (const replica of discovery.current())
        gauge.set({ replica: replica.name, replica_id: replica.id }, read(replica))
    })
  everyReplica("swarmguard_lb_active_leases", "Requests in flight to each replica", (replica) =>
    leases.active(replica.id),
  )
  everyReplica(
    "swarmguard_lb_replica_healthy",
    "1 while the replica is healthy, 0 while it is out",
    (replica) => (health.isHealthy(replica.id) ? 1 : 0),
  )
  everyReplica(
    "swarmguard_lb_replica_ejected",
    "1 while the replica is ejected for failing requests in a row, 0 otherwise",
    (replica) => (outliers.isEjected(replica.id) ? 1 : 0),
  )
  perReplica(
    "swarmguard_lb_replica_metrics_age_seconds",
    "Age of the replica's latest resource sample (replicas with metrics only)",
    (gauge) => {
      const now = clock.unsafeCurrentTimeMillis()
      for (const replica of discovery.current()) {
        const sample = metrics.get(replica.id)
        if (sample !== undefined)
          gauge.set({ replica: replica.name, replica_id: replica.id }, (now - sample.sampledAt) / 1000)
      }
    },
  )
  perReplica(
    "swarmguard_lb_replica_load_score",
    "The PRD's weighted load score of the replica's latest sample (replicas with metrics only)",
    (gauge) => {
      for (const replica of discovery.current()) {
        const sample = metrics.get(replica.id)
        if (sample !== undefined)
          gauge.set({ replica: replica.name, replica_id: replica.id }, loadScore(sample, config))
      }
    },
  )

  /** The exposition text: the balancer's families, then the process's. */
  return async (): Promise<string> => {
    const families = await registry.metrics()
    const processFamilies = await processMetrics().metrics()
    return `${families}\n${routingTimeText(algorithm, stats.routingTimes())}\n${processFamilies}`
  }
})
