// Retries once the retry budget is spent: refused and counted, the client gets the failure, replicas see at most budget × requests + burst extra.
import { describe, expect, it } from "vitest"
import { startCluster } from "../support/cluster.ts"
import { json, request } from "../support/http.ts"
import type { ReplicaSet } from "../support/replicas.ts"
import { metricsView } from "../support/views.ts"

const BUDGET = 0.1
const BURST = 3

const ENV = {
  LB_ALGORITHM: "round-robin",
  RETRY_BUDGET: String(BUDGET),
  RETRY_BURST: String(BURST),
  // Ejection would shrink the pool as the failures pile up; the budget alone must hold retries down.
  OUTLIER_CONSECUTIVE_FAILURES: "0",
}

/** What the replicas received on `path`, all together. */
const received = (set: ReplicaSet, path: string) =>
  set.replicas.reduce((sum, replica) => sum + replica.hits(path), 0)

/** A counter of the Prometheus exposition, read from its sample line. */
const prometheusCounter = async (lb: string, name: string): Promise<number> => {
  const text = (await request(`${lb}/_lb/metrics`)).body.toString("utf8")
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)
  if (match === null) throw new Error(`no ${name} sample in /_lb/metrics`)
  return Number(match[1])
}

/** The budget's bound, on what the replicas received and what the balancer counted. */
const expectWithinBudget = async (set: ReplicaSet, lb: string, path: string, requests: number) => {
  const metrics = await metricsView(lb)
  // Every request failed once; each failure was either retried (once: a retry is never retried) or refused.
  expect(metrics.retries + metrics.retries_denied).toBe(requests)
  expect(metrics.retries_denied).toBeGreaterThan(0)
  // The reserve is there for the first failures.
  expect(metrics.retries).toBeGreaterThanOrEqual(BURST)
  expect(metrics.retries).toBeLessThanOrEqual(BURST + BUDGET * requests)
  // "At most about 10 % extra load": what the replicas actually received.
  expect(received(set, path)).toBe(requests + metrics.retries)
  expect(received(set, path)).toBeLessThanOrEqual(requests * (1 + BUDGET) + BURST)
  expect(await prometheusCounter(lb, "swarmguard_lb_retries_total")).toBe(metrics.retries)
  expect(await prometheusCounter(lb, "swarmguard_lb_retries_denied_total")).toBe(metrics.retries_denied)
  return metrics
}

describe("retry budget spent", () => {
  it("every replica resets the connection: retries stop at the budget, the rest get 502", async () => {
    const { set, lb } = await startCluster(ENV)
    const requests = 100
    const everyone = set.replicas.map((replica) => `on=${replica.name}`).join("&")

    // One at a time, so the replicas' counts tell which requests were retried.
    const retried: Array<boolean> = []
    for (let i = 0; i < requests; i++) {
      const before = received(set, "/reset")
      const reply = await request(`${lb.url}/reset?${everyone}`)
      expect(reply.status).toBe(502)
      expect(reply.headers["content-type"]).toMatch(/^application\/json/)
      expect(json(reply)).toMatchObject({ error: "upstream_error" })
      const attempts = received(set, "/reset") - before
      expect(attempts === 1 || attempts === 2, `request ${i} reached the replicas ${attempts} times`).toBe(
        true,
      )
      retried.push(attempts === 2)
    }

    const metrics = await expectWithinBudget(set, lb.url, "/reset", requests)
    expect(metrics.retries).toBe(retried.filter(Boolean).length)
    expect(metrics.failures.upstream_error).toBe(requests)
    // The reserve went to the first failures; after it, one retry per 1 / RETRY_BUDGET requests.
    expect(retried.slice(0, BURST)).toEqual(Array(BURST).fill(true))
    const later = retried.slice(BURST).filter(Boolean).length
    expect(later).toBeLessThanOrEqual(Math.ceil(BUDGET * (requests - BURST)))
    expect(later).toBeGreaterThanOrEqual(Math.floor(BUDGET * (requests - BURST)) - 1)
  })

  it("every replica is too slow to answer: retries stop at the budget, the rest get 504", async () => {
    const { set, lb } = await startCluster({ ...ENV, UPSTREAM_RESPONSE_TIMEOUT: "0.2" })
    const requests = 30

    // All at once: undici checks response timeouts on a timer of about a second, so each costs that
    // much however short the setting, and the bound holds in any order.
    const replies = await Promise.all(
      Array.from({ length: requests }, () => request(`${lb.url}/slow?ms=30000&head=late`)),
    )

    for (const reply of replies) {
      expect(reply.status).toBe(504)
      expect(reply.headers["content-type"]).toMatch(/^application\/json/)
      expect(json(reply)).toMatchObject({ error: "upstream_timeout" })
    }
    const metrics = await expectWithinBudget(set, lb.url, "/slow", requests)
    expect(metrics.failures.upstream_timeout).toBe(requests)
  })
})
