/**
 * The routing step every request and upgrade goes through: the candidates, the selector's decision,
 * its stats and its lease, returned as an Attempt — or the refusal when there is nowhere to go.
 */
import { performance } from "node:perf_hooks"
import { Context, Effect, FiberSet, Layer, Option } from "effect"
import { Affinity } from "./Affinity.ts"
import { Attempt, type AttemptContext, type Refusal, type Try } from "./Attempt.ts"
import { LbConfig } from "./Config.ts"
import type { Endpoint } from "./Endpoint.ts"
import { HealthProbe } from "./HealthProbe.ts"
import { LeaseStore } from "./LeaseStore.ts"
import { everywhere, Locality } from "./locality.ts"
import { OutlierDetector } from "./OutlierDetector.ts"
import { ReplicaPool } from "./ReplicaPool.ts"
import { type FailureKind, RoutingStats } from "./RoutingStats.ts"
import { makeRetryBudget } from "./retry-budget.ts"
import { type Decision, Selector } from "./Selector.ts"
import { makeSummaryLog } from "./summary-log.ts"

export interface RouterShape {
  /**
   * A request (or upgrade) arrived: it is counted before routing, so refused ones count too, and a
   * request adds its share to the retry budget.
   */
  readonly arrived: (kind: "request" | "upgrade") => void
  /**
   * Chooses an endpoint and takes its lease; a refusal is counted as a failure. A first try with an
   * affinity `key` goes where the key binds it while that endpoint may take it (`Affinity.pick`).
   */
  readonly route: (tried: Try, key?: string) => Attempt | Refusal
  /** A request refused before routing (a declared body too large). */
  readonly refused: (kind: FailureKind) => void
}

export const isAttempt = (routed: Attempt | Refusal | undefined): routed is Attempt =>
  routed instanceof Attempt

export class Router extends Context.Tag("swarmguard/Router")<Router, RouterShape>() {
  static readonly layer = Layer.scoped(
    Router,
    Effect.gen(function* () {
      const config = yield* LbConfig
      const pool = yield* ReplicaPool
      const selector = yield* Selector
      const leases = yield* LeaseStore
      const stats = yield* RoutingStats
      const affinity = yield* Affinity
      const locality = Option.getOrElse(yield* Effect.serviceOption(Locality), () => everywhere)
      // Logs are written from the data plane, outside any fiber: through this layer's runtime.
      const run = yield* FiberSet.makeRuntime<never>()
      const log = (message: string, annotations: Record<string, unknown>) => {
        run(Effect.logInfo(message).pipe(Effect.annotateLogs({ route: config.routeName, ...annotations })))
      }
      const clock = yield* Effect.clock
      const summarize = makeSummaryLog(config.logEveryNRequests, stats, clock, log)
      const retryBudget = makeRetryBudget(config.retryBudget, config.retryBurst)
      const service = config.targetService

      const refuse = (error: string, message: string): Refusal => {
        stats.recordFailure("no_replica")
        return { status: 503, body: { error, message } }
      }

      const route = (tried: Try, key?: string): Attempt | Refusal => {
        const candidates = pool.candidates()
        const { panic } = candidates
        const choice =
          tried._tag === "Retry"
            ? {
                endpoints: candidates.endpoints.filter((endpoint) => endpoint !== tried.avoid),
                uniform: candidates.uniform,
              }
            : candidates
        // A retry is only sent where there is another endpoint: this is a first try.
        if (choice.endpoints.length === 0)
          return refuse("no_replica", `no replica of ${service} is known yet`)
        const started = performance.now()
        const bound =
          key === undefined || tried._tag === "Retry" ? undefined : affinity.pick(key, choice.endpoints)
        let decision: Decision | undefined
        if (bound !== undefined) {
          decision = { endpoint: bound, score: undefined, freshMetrics: undefined, fallback: false }
        } else {
          // Without LOCALITY nothing is narrowed, and nothing is allocated to say so.
          const near = locality === everywhere ? undefined : locality.prefer(choice)
          if (near !== undefined && near.outcome !== "none") stats.recordLocality(near.outcome)
          decision = selector.pick(near?.choice ?? choice)
        }
        const routingTimeMs = performance.now() - started
        if (decision === undefined) {
          return refuse(
            "no_fresh_metrics",
            `no replica of ${service} has fresh metrics and FALLBACK_ENABLED is false`,
          )
        }
        stats.recordDecision(decision, routingTimeMs, panic)
        const { endpoint } = decision
        const lease = leases.acquire(endpoint)
        if (config.debugRouting) {
          log("routed", {
            replica: endpoint.replica.name,
            replica_id: endpoint.id,
            algorithm: selector.algorithm,
            score: decision.score ?? null,
            leases: endpoint.active,
            fallback: decision.fallback,
            panic,
            routing_time_ms: routingTimeMs,
          })
        }
        return new Attempt(context, endpoint, lease, tried, panic)
      }

      const context: AttemptContext = {
        stats,
        leases,
        outliers: yield* OutlierDetector,
        health: yield* HealthProbe,
        observe: selector.observe,
        retryBudget,
        targetService: service,
        hasOtherCandidate: (endpoint: Endpoint) =>
          pool.candidates().endpoints.some((candidate) => candidate !== endpoint),
        retry: (avoid) => route({ _tag: "Retry", avoid }),
        now: () => clock.unsafeCurrentTimeMillis(),
      }

      return {
        arrived: (kind) => {
          summarize(stats.recordRequest())
          if (kind === "request") retryBudget.deposit()
        },
        route,
        refused: (kind) => stats.recordFailure(kind),
      }
    }),
  )
}
