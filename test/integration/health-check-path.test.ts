// HEALTH_CHECK_PATH: the probes go to that path, and a replica failing there is taken out of rotation until it passes again.
import { describe, expect, it } from "vitest"
import { useCluster } from "../support/cluster.ts"
import { request } from "../support/http.ts"
import { sharesOf, waitForHealth } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

describe("HEALTH_CHECK_PATH", () => {
  const cluster = useCluster({
    LB_ALGORITHM: "round-robin",
    HEALTH_CHECK_PATH: "/ready",
    HEALTH_CHECK_INTERVAL: "0.2",
    HEALTH_CHECK_TIMEOUT: "1",
  })

  it("probes every replica at that path, and not at /health", async () => {
    await waitFor("two probes at /ready on every replica", () =>
      cluster.set.replicas.every((replica) => replica.hits("/ready") >= 2) ? true : undefined,
    )
    for (const replica of cluster.set.replicas) expect(replica.hits("/health"), replica.name).toBe(0)
  })

  it("a replica failing at that path is taken out, though its /health is fine, and comes back when it passes", async () => {
    const { lb, set } = cluster
    const failing = set.replicas[2]!
    failing.setStatus("/ready", 503)

    await waitForHealth(lb.url, failing.id, false)
    expect((await request(`${failing.origin}/health`)).status).toBe(200)
    const without = await sharesOf(lb.url, 30)
    expect(without[failing.name]).toBeUndefined()

    failing.setStatus("/ready", undefined)
    await waitForHealth(lb.url, failing.id, true)
    const back = await sharesOf(lb.url, 30)
    expect(back[failing.name]).toBe(10)
  })
})
