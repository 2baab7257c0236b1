// Request shares per algorithm, through the real balancer to three real replicas on loopback.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { hold } from "../support/http.ts"
import { type ReplicaSet, startReplicas } from "../support/replicas.ts"
import { metricsView, replicasView, sharesOf, waitForNoLeases } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

const REQUESTS = 300

describe("shares per algorithm", () => {
  let set: ReplicaSet
  beforeAll(async () => {
    set = await startReplicas(3)
  })
  afterAll(() => set?.stopAll())

  it.each([
    "round-robin",
    "lease",
    "metrics",
    "hybrid",
    "adaptive",
  ])("%s: 300 sequential GETs give each replica a third", async (algorithm) => {
    const lb = await startBalancer({ REPLICAS: set.origins, LB_ALGORITHM: algorithm })
    onTestFinished(() => lb.close())

    const shares = await sharesOf(lb.url, REQUESTS)

    for (const replica of set.replicas) {
      const share = shares[replica.name] ?? 0
      // Round-robin is exact; the others break ties by rotation, so they may drift only a little.
      if (algorithm === "round-robin") expect(share, replica.name).toBe(REQUESTS / 3)
      // Adaptive follows measured latency: equal replicas tie within its noise margin, but the first
      // answers (cold connections, cold code) are slower, and it takes a while to try a replica again.
      else if (algorithm === "adaptive")
        expect(share, `${replica.name} got ${share}`).toBeGreaterThanOrEqual(45)
      else expect(Math.abs(share - REQUESTS / 3), `${replica.name} got ${share}`).toBeLessThanOrEqual(10)
    }
    const metrics = await metricsView(lb.url)
    expect(metrics.algorithm).toBe(algorithm)
    // The balancer's own count agrees with who answered, under the same replica ids as /_lb/replicas.
    expect(metrics.routing_decisions).toEqual(
      Object.fromEntries(set.replicas.map((replica) => [replica.id, shares[replica.name] ?? 0])),
    )
    if (algorithm === "metrics" || algorithm === "hybrid") {
      // Static REPLICAS come without agents: every decision is a counted fallback on stale metrics.
      expect(metrics.fallback_decisions).toBe(REQUESTS)
      expect(metrics.cache_hit_rate).toBe(0)
    } else if (algorithm === "adaptive") {
      // It reads metrics only to refine latency: without them it does without, and nothing falls back.
      expect(metrics.fallback_decisions).toBe(0)
      expect(metrics.cache_hit_rate).toBe(0)
    } else {
      expect(metrics.fallback_decisions).toBe(0)
    }
  })

  it("adaptive: a replica that breaks its connections is soon left alone", async () => {
    const lb = await startBalancer({ REPLICAS: set.origins, LB_ALGORITHM: "adaptive" })
    onTestFinished(() => lb.close())
    const broken = set.replicas[1]!
    const before = broken.hits("/reset")

    // Every GET it breaks is retried on another replica, so every client still gets its 200; the
    // failed exchange is what the selector learns from (a reset is no health failure).
    const shares = await sharesOf(lb.url, 60, `/reset?on=${broken.name}`)

    expect(shares[broken.name]).toBeUndefined()
    expect(broken.hits("/reset") - before).toBeLessThanOrEqual(3)
    expect((await metricsView(lb.url)).retries).toBe(broken.hits("/reset") - before)
  })

  it("lease: requests avoid the replicas holding long in-flight requests", async () => {
    const lb = await startBalancer({ REPLICAS: set.origins, LB_ALGORITHM: "lease" })
    onTestFinished(() => lb.close())
    const slowBefore = set.replicas.map((replica) => replica.hits("/slow"))

    // One at a time, so the second is routed knowing the first's lease.
    const first = hold(`${lb.url}/slow?ms=30000`)
    onTestFinished(first.abort)
    await waitFor("the first slow request to hold a lease", async () =>
      (await metricsView(lb.url)).leases.active === 1 ? true : undefined,
    )
    const second = hold(`${lb.url}/slow?ms=30000`)
    onTestFinished(second.abort)
    const rows = await waitFor("the two slow requests to reach two replicas", async () => {
      const rows = await replicasView(lb.url)
      const reached = set.replicas.filter((replica, i) => replica.hits("/slow") > slowBefore[i]!)
      return reached.length === 2 ? rows : undefined
    })

    const pinned = set.replicas.filter((replica, i) => replica.hits("/slow") > slowBefore[i]!)
    const free = set.replicas.find((replica) => !pinned.includes(replica))!
    for (const replica of set.replicas) {
      const row = rows.find((candidate) => candidate.id === replica.id)
      expect(row?.active_leases, replica.name).toBe(replica === free ? 0 : 1)
    }

    expect(await sharesOf(lb.url, 30)).toEqual({ [free.name]: 30 })

    first.abort()
    second.abort()
    await waitForNoLeases(lb.url)
  })
})
