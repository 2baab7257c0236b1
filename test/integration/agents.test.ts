// Metrics-based routing with replicas discovered through an agent: ids agree, fresh metrics steer traffic, stale ones fall back.
import { describe, expect, it, onTestFinished } from "vitest"
import { startAgent, startBalancerOverAgent } from "../support/agent.ts"
import { startReplicas } from "../support/replicas.ts"
import { metricsView, replicasView, sharesOf } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

const BUSY = { cpuPercent: 90, memoryPercent: 60, networkMbps: 50 }

const setUp = async (algorithm: string) => {
  const set = await startReplicas(3, { samePort: true })
  onTestFinished(() => set.stopAll())
  const agent = await startAgent(set.replicas)
  onTestFinished(() => agent.stop())
  const lb = await startBalancerOverAgent(agent.node, set.replicas, { LB_ALGORITHM: algorithm })
  return { set, agent, lb }
}

describe("routing on agents' metrics", () => {
  it.each([
    "metrics",
    "hybrid",
  ])("%s: the busy replica gets little traffic, on fresh metrics", async (algorithm) => {
    const { set, agent, lb } = await setUp(algorithm)
    const [busy] = set.replicas
    agent.setLoad(busy!, BUSY)
    // The selector learns each replica's cost per request over whole sample intervals, starting from
    // a near rotation: traffic over a few agent polls lets it settle before the share is measured.
    const pollsBefore = agent.polls()
    await waitFor("traffic across four agent polls", async () => {
      await sharesOf(lb.url, 10)
      return agent.polls() >= pollsBefore + 4 ? true : undefined
    })
    const before = await metricsView(lb.url)

    const shares = await sharesOf(lb.url, 300)

    expect(shares[busy!.name] ?? 0, JSON.stringify(shares)).toBeLessThan(30)
    const metrics = await metricsView(lb.url)
    expect(metrics.fallback_decisions).toBe(0)
    expect(metrics.cache_hit_rate).toBe(1)
    // The balancer's own endpoints are not counted as requests.
    expect(metrics.total_requests - before.total_requests).toBe(300)
    // Decisions are counted under the agents' container ids, the same ids health and leases use: each
    // replica's count is what it served (settling included), the busy one's too, even when that is 0.
    const counted = Object.keys(metrics.routing_decisions)
    expect(set.replicas.map(agent.containerId)).toEqual(expect.arrayContaining(counted))
    const rows = await replicasView(lb.url)
    for (const replica of set.replicas) {
      const id = agent.containerId(replica)
      expect(
        rows.map((row) => row.id),
        replica.name,
      ).toContain(id)
      expect(metrics.routing_decisions[id] ?? 0, `${replica.name} (${id})`).toBe(replica.hits("/whoami"))
    }
  })

  it("metrics: when the agent stops answering, routing falls back to rotation and keeps serving", async () => {
    const { set, agent, lb } = await setUp("metrics")
    agent.setLoad(set.replicas[0]!, BUSY)
    await agent.stop()
    await waitFor("the metrics to go stale", async () => {
      const rows = await replicasView(lb.url)
      return rows.every((row) => row.metrics?.fresh === false) ? rows : undefined
    })
    const before = await metricsView(lb.url)

    const shares = await sharesOf(lb.url, 60)

    expect(Object.values(shares)).toEqual([20, 20, 20])
    const after = await metricsView(lb.url)
    expect(after.fallback_decisions - before.fallback_decisions).toBe(60)
  })
})
