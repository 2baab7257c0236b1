// The memory and network terms of the load score: MEMORY_WEIGHT, NETWORK_WEIGHT and NETWORK_CAPACITY_MBPS in the views and in `metrics` routing.
import { describe, expect, it, onTestFinished } from "vitest"
import { type FakeAgent, type Load, startAgent, startBalancerOverAgent } from "../support/agent.ts"
import type { Balancer } from "../support/balancer.ts"
import { request } from "../support/http.ts"
import { type ReplicaServer, startReplicas } from "../support/replicas.ts"
import { replicasView, sharesOf } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

const IDLE: Load = { cpuPercent: 5, memoryPercent: 10, networkMbps: 0 }

const setUp = async () => {
  const set = await startReplicas(3, { samePort: true })
  onTestFinished(() => set.stopAll())
  const agent = await startAgent(set.replicas)
  onTestFinished(() => agent.stop())
  return { replicas: set.replicas as [ReplicaServer, ReplicaServer, ReplicaServer], agent }
}

/** `swarmguard_lb_replica_load_score` per replica id, from the Prometheus exposition. */
const prometheusScores = async (lb: string): Promise<Record<string, number>> => {
  const text = (await request(`${lb}/_lb/metrics`)).body.toString("utf8")
  const scores: Record<string, number> = {}
  for (const match of text.matchAll(/^swarmguard_lb_replica_load_score\{([^}]*)\} (\S+)$/gm)) {
    const id = /replica_id="([^"]*)"/.exec(match[1]!)?.[1]
    if (id !== undefined) scores[id] = Number(match[2])
  }
  return scores
}

/** Waits until both views show, for each replica, the score `expected` gives its load. */
const waitForScores = (lb: Balancer, agent: FakeAgent, expected: ReadonlyArray<[ReplicaServer, number]>) =>
  waitFor("the load scores of the agent's latest figures", async () => {
    const rows = await replicasView(lb.url)
    const exposed = await prometheusScores(lb.url)
    const seen = expected.map(([replica, score]) => {
      const id = agent.containerId(replica)
      return { id, expected: score, json: rows.find((row) => row.id === id)?.score, prometheus: exposed[id] }
    })
    const close = (value: number | null | undefined, score: number) =>
      typeof value === "number" && Math.abs(value - score) < 1e-9
    if (seen.every((row) => close(row.json, row.expected) && close(row.prometheus, row.expected))) return true
    // Thrown, so that a timeout says what the views showed last.
    throw new Error(JSON.stringify(seen))
  })

/** The busy replica's share of 300 sequential requests, once the selector has seen four agent polls. */
const busyShare = async (lb: Balancer, agent: FakeAgent, busy: ReplicaServer) => {
  // The selector learns each replica's cost per request over whole sample intervals.
  const pollsBefore = agent.polls()
  await waitFor("traffic across four agent polls", async () => {
    await sharesOf(lb.url, 10)
    return agent.polls() >= pollsBefore + 4 ? true : undefined
  })
  const shares = await sharesOf(lb.url, 300)
  return { share: shares[busy.name] ?? 0, shares }
}

describe("load score terms", () => {
  it("/_lb/replicas and /_lb/metrics score cpu·CPU_WEIGHT + mem·MEMORY_WEIGHT + net % of NETWORK_CAPACITY_MBPS·NETWORK_WEIGHT", async () => {
    const { replicas, agent } = await setUp()
    const [one, two, three] = replicas
    agent.setLoad(one, { cpuPercent: 40, memoryPercent: 20, networkMbps: 30 })
    agent.setLoad(two, { cpuPercent: 10, memoryPercent: 70, networkMbps: 0 })
    agent.setLoad(three, { cpuPercent: 0, memoryPercent: 0, networkMbps: 80 })
    const weighted = await startBalancerOverAgent(agent.node, replicas, {
      CPU_WEIGHT: "0.5",
      MEMORY_WEIGHT: "0.25",
      NETWORK_WEIGHT: "2",
      NETWORK_CAPACITY_MBPS: "200",
    })
    const defaults = await startBalancerOverAgent(agent.node, replicas, {})

    // 40·0.5 + 20·0.25 + (30 / 200 · 100)·2, and so on.
    await waitForScores(weighted, agent, [
      [one, 20 + 5 + 30],
      [two, 5 + 17.5 + 0],
      [three, 0 + 0 + 80],
    ])
    // The defaults: 0.5, 0.3, 0.2 and 100 Mbps.
    await waitForScores(defaults, agent, [
      [one, 20 + 6 + 6],
      [two, 5 + 21 + 0],
      [three, 0 + 0 + 16],
    ])
  })

  it.each([
    {
      term: "memory",
      busy: { ...IDLE, memoryPercent: 90 },
      counted: { CPU_WEIGHT: "0", MEMORY_WEIGHT: "1", NETWORK_WEIGHT: "0" },
      // CPU alone sees three equal replicas.
      ignored: { CPU_WEIGHT: "1", MEMORY_WEIGHT: "0", NETWORK_WEIGHT: "0" },
    },
    {
      term: "network",
      busy: { ...IDLE, networkMbps: 80 },
      counted: { CPU_WEIGHT: "0", MEMORY_WEIGHT: "0", NETWORK_WEIGHT: "1", NETWORK_CAPACITY_MBPS: "100" },
      // 80 Mbps of a 100 Gbps capacity is no load worth routing around.
      ignored: { CPU_WEIGHT: "0", MEMORY_WEIGHT: "0", NETWORK_WEIGHT: "1", NETWORK_CAPACITY_MBPS: "100000" },
    },
  ])("metrics: a replica busy on $term gets little traffic when that term weighs, a third when it does not", async ({
    busy,
    counted,
    ignored,
  }) => {
    const { replicas, agent } = await setUp()
    const [loaded] = replicas
    agent.setLoad(loaded, busy)
    const weighing = await startBalancerOverAgent(agent.node, replicas, {
      LB_ALGORITHM: "metrics",
      ...counted,
    })
    const blind = await startBalancerOverAgent(agent.node, replicas, { LB_ALGORITHM: "metrics", ...ignored })

    const avoided = await busyShare(weighing, agent, loaded)
    const even = await busyShare(blind, agent, loaded)

    // A third would be 100. The selector's projections wander on a busy machine: "a third" is read
    // as at least half of that, "little" as under a third of it.
    expect(avoided.share, JSON.stringify(avoided.shares)).toBeLessThan(30)
    expect(even.share, JSON.stringify(even.shares)).toBeGreaterThanOrEqual(50)
  })
})
