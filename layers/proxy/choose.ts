/**
 * Choosing where one request (or upgrade) goes: the candidates, the selector, slow start, the
 * decision's stats and its lease — or the refusal when there is nowhere to go. Shared by proxied
 * requests and upgrades so both route by the same rules.
 */
import { performance } from "node:perf_hooks"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Replica } from "../../src/domain/Replica.ts"
import type { Lease, LeaseStoreShape } from "../../src/LeaseStore.ts"
import type { Candidates } from "../../src/ReplicaPool.ts"
import type { RoutingStatsShape } from "../../src/RoutingStats.ts"
import type { Decision, SelectorShape } from "../../src/Selector.ts"

export interface RoutingContext {
  readonly candidates: () => Candidates
  readonly pick: SelectorShape["pick"]
  readonly algorithm: Algorithm
  readonly leases: LeaseStoreShape
  readonly stats: RoutingStatsShape
  readonly targetService: string
  readonly debugRouting: boolean
  readonly log: (message: string, annotations: Record<string, unknown>) => void
}

export interface Routed {
  readonly decision: Decision
  readonly lease: Lease
  /** Chosen among every known replica because none was healthy. */
  readonly panic: boolean
}

/** The answer when no replica can be chosen, with its JSON body. */
export interface Refusal {
  readonly status: 503
  readonly body: { readonly error: string; readonly message: string }
}

/**
 * `excluded`: the replica a retry must avoid (the caller made sure another exists); undefined on a
 * first attempt. The decision is counted and its lease taken; a refusal is counted as a failure.
 */
export const choose = (context: RoutingContext, excluded: Replica | undefined): Routed | Refusal => {
  const { replicas, panic, deferred } = context.candidates()
  const candidates = excluded ? replicas.filter((replica) => replica.id !== excluded.id) : replicas
  if (candidates.length === 0) {
    // A retry is only sent where there is another replica: this is a first attempt.
    context.stats.recordFailure("no_replica")
    const message = `no replica of ${context.targetService} is known yet`
    return { status: 503, body: { error: "no_replica", message } }
  }
  const started = performance.now()
  let decision = context.pick(candidates)
  if (decision !== undefined && deferred?.(decision.replica) && candidates.length > 1) {
    // Slow start holds this pick back from a warming replica: the others choose among themselves.
    const chosen = decision.replica
    decision = context.pick(candidates.filter((replica) => replica !== chosen)) ?? decision
  }
  const routingTimeMs = performance.now() - started
  if (decision === undefined) {
    context.stats.recordFailure("no_replica")
    const message = `no replica of ${context.targetService} has fresh metrics and FALLBACK_ENABLED is false`
    return { status: 503, body: { error: "no_fresh_metrics", message } }
  }
  context.stats.recordDecision(decision, routingTimeMs, panic)
  const lease = context.leases.acquire(decision.replica.id)
  if (context.debugRouting) {
    context.log("routed", {
      replica: decision.replica.name,
      replica_id: decision.replica.id,
      algorithm: context.algorithm,
      score: decision.score ?? null,
      leases: context.leases.active(decision.replica.id),
      fallback: decision.fallback,
      panic,
      routing_time_ms: routingTimeMs,
    })
  }
  return { decision, lease, panic }
}

export const isRefusal = (choice: Routed | Refusal): choice is Refusal => "status" in choice
