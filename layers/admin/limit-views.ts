/**
 * What the limits did, for `GET /metrics` and `/_lb/health`: each route's queue (`REPLICA_MAX_REQUESTS`)
 * and client rate limit, and the state of the store that keeps the rate budgets.
 */
import type { RateLimitStoreStatus } from "../../src/RateLimitStore.ts"
import type { Cluster } from "../../src/RouteTable.ts"

export interface QueueView {
  readonly length: number
  readonly queued: number
  readonly served: number
  readonly full: number
  readonly timed_out: number
  readonly abandoned: number
  /** Mean wait of the requests that left the queue, in ms; 0 before any did. */
  readonly avg_wait_ms: number
}

export interface RateLimitView {
  readonly admitted: number
  readonly limited: number
  readonly unknown_key: number
  readonly unavailable: number
}

export interface LimitsView {
  readonly queue: QueueView
  /** Null where no route has a rate limit. */
  readonly rate_limit: RateLimitView | null
}

const queueView = (clusters: ReadonlyArray<Cluster>): QueueView => {
  let length = 0
  let queued = 0
  let served = 0
  let full = 0
  let timedOut = 0
  let abandoned = 0
  let waited = 0
  let waitSeconds = 0
  for (const { router } of clusters) {
    const queue = router.queue()
    length += queue.length
    queued += queue.counts.queued
    served += queue.counts.served
    full += queue.counts.full
    timedOut += queue.counts.timedOut
    abandoned += queue.counts.abandoned
    waited += queue.waitTimes.count
    waitSeconds += queue.waitTimes.sumSeconds
  }
  const avg_wait_ms = waited === 0 ? 0 : (waitSeconds * 1000) / waited
  return { length, queued, served, full, timed_out: timedOut, abandoned, avg_wait_ms }
}

/** The rate limits of `clusters` added up; null when none of them has one. */
const rateLimitView = (clusters: ReadonlyArray<Cluster>): RateLimitView | null => {
  const limiters = clusters.flatMap(({ rateLimiter }) => (rateLimiter === undefined ? [] : [rateLimiter]))
  if (limiters.length === 0) return null
  const view = { admitted: 0, limited: 0, unknown_key: 0, unavailable: 0 }
  for (const limiter of limiters) {
    const counts = limiter.counts()
    view.admitted += counts.admitted
    view.limited += counts.limited
    view.unknown_key += counts.unknownKey
    view.unavailable += counts.unavailable
  }
  return view
}

/** The limits of one route, or of every route added up: the balancer's own figures. */
export const limitsOf = (clusters: ReadonlyArray<Cluster>): LimitsView => ({
  queue: queueView(clusters),
  rate_limit: rateLimitView(clusters),
})

export const storeView = (status: RateLimitStoreStatus) => ({
  backend: status.backend,
  degraded: status.degraded,
  outages: status.outages,
  redis_errors: status.redisErrors,
  local_decisions: status.localDecisions,
  unavailable_decisions: status.unavailableDecisions,
})
