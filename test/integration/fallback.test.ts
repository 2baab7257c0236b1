// FALLBACK_ENABLED over HTTP: without fresh metrics `metrics`/`hybrid` answer 503 no_fresh_metrics when it is off, fall back and count it when on.
import { describe, expect, it, onTestFinished } from "vitest"
import { type FakeAgent, startAgent, startBalancerOverAgent } from "../support/agent.ts"
import { json, request } from "../support/http.ts"
import { type ReplicaServer, startReplicas } from "../support/replicas.ts"
import { metricsView, replicasView, sharesOf } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

/**
 * Four replicas reported by two agents, 1–2 by the first and 3–4 by the second, and a balancer over
 * both with `env`; returned once every replica has fresh metrics.
 */
const setUp = async (env: Record<string, string>) => {
  const set = await startReplicas(4, { samePort: true })
  onTestFinished(() => set.stopAll())
  const [one, two, three, four] = set.replicas as [ReplicaServer, ReplicaServer, ReplicaServer, ReplicaServer]
  const first = await startAgent([one, two])
  onTestFinished(() => first.stop())
  const second = await startAgent([three, four])
  onTestFinished(() => second.stop())
  const lb = await startBalancerOverAgent(`${first.node},${second.node}`, set.replicas, env)
  return { set, first, second, lb, fresh: [one, two], stale: [three, four] }
}

/** Waits until `/_lb/replicas` shows the metrics of `stale` stale, and the others' fresh. */
const waitForStale = (lb: string, agent: FakeAgent, stale: ReadonlyArray<ReplicaServer>) =>
  waitFor(`the metrics of ${stale.map((replica) => replica.name).join(", ")} to go stale`, async () => {
    const rows = await replicasView(lb)
    const staleIds = new Set(stale.map(agent.containerId))
    const asExpected = rows.every((row) => row.metrics?.fresh === !staleIds.has(row.id))
    return rows.length === 4 && asExpected ? rows : undefined
  })

const hitsOf = (replicas: ReadonlyArray<ReplicaServer>, path: string) =>
  replicas.reduce((sum, replica) => sum + replica.hits(path), 0)

describe.each(["metrics", "hybrid"])("%s with FALLBACK_ENABLED", (algorithm) => {
  it("false, no fresh metrics at all: 503 JSON no_fresh_metrics, and no replica is asked", async () => {
    const { set, first, second, lb } = await setUp({ LB_ALGORITHM: algorithm, FALLBACK_ENABLED: "false" })
    await first.stop()
    await second.stop()
    await waitForStale(lb.url, first, set.replicas)

    const reply = await request(`${lb.url}/whoami`)

    expect(reply.status).toBe(503)
    expect(reply.headers["content-type"]).toMatch(/^application\/json/)
    expect(json(reply)).toMatchObject({ error: "no_fresh_metrics" })
    expect(hitsOf(set.replicas, "/whoami")).toBe(0)
    expect((await metricsView(lb.url)).fallback_decisions).toBe(0)
  })

  it("false, some metrics stale: only the replicas with fresh metrics are used", async () => {
    const { second, lb, fresh, stale } = await setUp({ LB_ALGORITHM: algorithm, FALLBACK_ENABLED: "false" })
    await second.stop()
    await waitForStale(lb.url, second, stale)

    const shares = await sharesOf(lb.url, 60)

    expect(Object.keys(shares).sort()).toEqual(fresh.map((replica) => replica.name).sort())
    expect(hitsOf(stale, "/whoami")).toBe(0)
    expect((await metricsView(lb.url)).fallback_decisions).toBe(0)
  })

  it("true, some metrics stale: every replica is routed to, and each decision is counted as a fallback", async () => {
    const { set, second, lb, stale } = await setUp({ LB_ALGORITHM: algorithm, FALLBACK_ENABLED: "true" })
    await second.stop()
    await waitForStale(lb.url, second, stale)
    const before = await metricsView(lb.url)

    const shares = await sharesOf(lb.url, 60)

    // Round-robin (metrics) or fewest leases with ties taking turns (hybrid): about even either way.
    for (const replica of set.replicas) expect(shares[replica.name], replica.name).toBeGreaterThanOrEqual(10)
    const after = await metricsView(lb.url)
    expect(after.fallback_decisions - before.fallback_decisions).toBe(60)
  })
})
