// SLOW_START through the real proxy: a replica that joins a running pool, or turns healthy again, starts with a small share and reaches its fair one over the window.
import { describe, expect, it, onTestFinished } from "vitest"
import { startAgent, startBalancerOverAgent } from "../support/agent.ts"
import { startCluster } from "../support/cluster.ts"
import { type ReplicaServer, startReplicas } from "../support/replicas.ts"
import { replicasView, sharesOf, waitForHealth } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

// Long enough that the first batch below, tens of milliseconds' worth of requests, falls well inside
// it even on a loaded machine; short enough to wait out.
const SLOW_START = { SLOW_START: "5" }
const BATCH = 40

/**
 * Checks the ramp of `warming`, one of `replicas`: of `BATCH` sequential requests it gets clearly less
 * than its fair share at first; once it has caught up, about its fair share.
 */
const expectRamp = async (lb: string, warming: ReplicaServer, replicas: number) => {
  const fair = BATCH / replicas
  const first = (await sharesOf(lb, BATCH))[warming.name] ?? 0
  // About 10 % of its fair share at first: clearly less than half of it.
  expect(first, `${warming.name}'s first ${BATCH} requests`).toBeLessThan(fair / 2)

  const ramp = [first]
  await waitFor(
    `${warming.name} to reach its fair share`,
    async () => {
      const share = (await sharesOf(lb, BATCH))[warming.name] ?? 0
      ramp.push(share)
      // Whole requests: a third of 40 is 13 or 14 of them.
      if (share >= Math.floor(fair)) return true
      // Thrown, so that a timeout tells how far the ramp got.
      throw new Error(`per ${BATCH} requests so far: ${ramp.join(", ")}`)
    },
    // The window is 5 s: a generous bound for a busy machine.
    { timeoutMs: 30_000, intervalMs: 0 },
  )
  const after = (await sharesOf(lb, 2 * BATCH))[warming.name] ?? 0
  expect(after, `${warming.name}'s share after ${ramp.join(", ")}`).toBeGreaterThanOrEqual(0.8 * 2 * fair)
  expect(after, `${warming.name}'s share after ${ramp.join(", ")}`).toBeLessThanOrEqual(1.2 * 2 * fair)
}

describe.each(["round-robin", "lease"])("slow start, %s", (algorithm) => {
  it("a replica that joins a running pool through agent discovery", async () => {
    const set = await startReplicas(4, { samePort: true })
    onTestFinished(() => set.stopAll())
    const [first, second, third, joining] = set.replicas as [
      ReplicaServer,
      ReplicaServer,
      ReplicaServer,
      ReplicaServer,
    ]
    const agent = await startAgent([first, second, third])
    onTestFinished(() => agent.stop())
    const lb = await startBalancerOverAgent(agent.node, [first, second, third], {
      LB_ALGORITHM: algorithm,
      ...SLOW_START,
    })
    // The pool's first replicas start together, at their full shares.
    expect(await sharesOf(lb.url, 30)).toEqual({ [first.name]: 10, [second.name]: 10, [third.name]: 10 })

    agent.setReplicas(set.replicas)
    await waitFor("the balancer to discover the fourth replica", async () =>
      (await replicasView(lb.url)).some((row) => row.id === agent.containerId(joining)) ? true : undefined,
    )

    await expectRamp(lb.url, joining, 4)
  })

  it("a replica that turns healthy again after failing its probes", async () => {
    const { set, lb } = await startCluster({
      LB_ALGORITHM: algorithm,
      HEALTH_CHECK_INTERVAL: "0.2",
      HEALTH_CHECK_TIMEOUT: "1",
      ...SLOW_START,
    })
    const returning = set.replicas[2]!
    expect(Object.values(await sharesOf(lb.url, 30))).toEqual([10, 10, 10])

    await returning.stop()
    await waitForHealth(lb.url, returning.id, false)
    await returning.restart()
    await waitForHealth(lb.url, returning.id, true)

    await expectRamp(lb.url, returning, 3)
  })
})
