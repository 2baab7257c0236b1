/**
 * The routing step every request and upgrade goes through: the candidates, the selector's decision,
 * its stats and its lease, returned as an Attempt — or the refusal when there is nowhere to go. With
 * `REPLICA_MAX_REQUESTS`, only replicas below their cap are candidates, and a request that finds none
 * waits in the route's queue until an exchange ends.
 */
import { performance } from "node:perf_hooks"
import { Context, Duration, Effect, FiberId, FiberSet, Layer, Option } from "effect"
import { Affinity } from "./Affinity.ts"
import { Attempt, type AttemptContext, type Refusal, type Try } from "./Attempt.ts"
import { LbConfig } from "./Config.ts"
import type { Endpoint } from "./Endpoint.ts"
import { HealthProbe } from "./HealthProbe.ts"
import { LeaseStore } from "./LeaseStore.ts"
import { makeRequestQueue, type QueueCounts, type Ticket } from "./limits/request-queue.ts"
import type { WaitTimes } from "./limits/wait-times.ts"
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
  /**
   * Like `route`, but when every candidate is at its cap the request waits its turn: the ticket
   * delivers its attempt (or a `queue_timeout` refusal) later. A full queue is a `queue_full` refusal.
   */
  readonly routeOrQueue: (tried: Try, key?: string) => Attempt | Refusal | Ticket
  /** A request refused before routing (a declared body too large). */
  readonly refused: (kind: FailureKind) => void
  readonly queue: () => {
    readonly length: number
    readonly counts: QueueCounts
    readonly waitTimes: WaitTimes
  }
}

/** Every candidate is at its cap (`REPLICA_MAX_REQUESTS`). */
const SATURATED = Symbol("saturated")

/** When a client refused for capacity may try again, in seconds. */
const CAPACITY_RETRY_AFTER_SECONDS = 1

export const isAttempt = (routed: Attempt | Refusal | Ticket | undefined): routed is Attempt =>
  routed instanceof Attempt

const hasRoom = (endpoint: Endpoint) => endpoint.hasRoom

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

      const atCapacity = (kind: "queue_full" | "queue_timeout"): Refusal => {
        stats.recordFailure(kind)
        const message =
          kind === "queue_full"
            ? `every replica of ${service} is at its REPLICA_MAX_REQUESTS and the queue is full`
            : `no replica of ${service} had room within QUEUE_TIMEOUT`
        return {
          status: 503,
          retryAfterSeconds: CAPACITY_RETRY_AFTER_SECONDS,
          body: { error: kind, message },
        }
      }

      const pick = (tried: Try, key?: string): Attempt | Refusal | typeof SATURATED => {
        const candidates = pool.candidates()
        const { panic } = candidates
        let choice: { readonly endpoints: ReadonlyArray<Endpoint>; readonly uniform: boolean } =
          tried._tag === "Retry"
            ? {
                endpoints: candidates.endpoints.filter((endpoint) => endpoint !== tried.avoid),
                uniform: candidates.uniform,
              }
            : candidates
        // A retry is only sent where there is another endpoint: this is a first try.
        if (choice.endpoints.length === 0)
          return refuse("no_replica", `no replica of ${service} is known yet`)
        // Only when a replica is at its cap is a narrower list made: selectors and affinity keep
        // per-list caches.
        if (candidates.capped && !choice.endpoints.every(hasRoom)) {
          const open = choice.endpoints.filter(hasRoom)
          if (open.length === 0) return SATURATED
          choice = { endpoints: open, uniform: choice.uniform }
        }
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

      const route = (tried: Try, key?: string): Attempt | Refusal => {
        const routed = pick(tried, key)
        return routed !== SATURATED ? routed : atCapacity("queue_full")
      }

      const queue = makeRequestQueue(
        config.queueSize,
        config.queueTimeoutMs,
        {
          start: (ms, expire) => {
            const fiber = run(Effect.sleep(Duration.millis(ms)).pipe(Effect.zipRight(Effect.sync(expire))))
            return () => fiber.unsafeInterruptAsFork(FiberId.none)
          },
          now: () => clock.unsafeCurrentTimeMillis(),
        },
        () => atCapacity("queue_timeout"),
      )

      const routeOrQueue = (tried: Try, key?: string): Attempt | Refusal | Ticket => {
        // While requests wait, a newcomer queues behind them: the place an exchange frees is theirs.
        if (queue.length() === 0) {
          const routed = pick(tried, key)
          if (routed !== SATURATED) return routed
        }
        return queue.enqueue(tried, key) ?? atCapacity("queue_full")
      }

      const serveTicket = (ticket: Ticket): Attempt | Refusal | undefined => {
        const routed = pick(ticket.tried, ticket.key)
        return routed === SATURATED ? undefined : routed
      }
      let serving = false
      const serveQueue = () => {
        serving = false
        queue.serve(serveTicket)
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
          pool.candidates().endpoints.some((candidate) => candidate !== endpoint && candidate.hasRoom),
        retry: (avoid) => route({ _tag: "Retry", avoid }),
        released: () => {
          // Served after the ending exchange has unwound: never from inside the transport's callback.
          if (serving || queue.length() === 0) return
          serving = true
          queueMicrotask(serveQueue)
        },
        now: () => clock.unsafeCurrentTimeMillis(),
      }

      return {
        arrived: (kind) => {
          summarize(stats.recordRequest())
          if (kind === "request") retryBudget.deposit()
        },
        route,
        routeOrQueue,
        refused: (kind) => stats.recordFailure(kind),
        queue: () => ({ length: queue.length(), counts: queue.counts(), waitTimes: queue.waitTimes() }),
      }
    }),
  )
}
