// Lease bookkeeping against real time: the leak guard (LEASE_DURATION) and upstream timeouts.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { json, request } from "../support/http.ts"
import { type ReplicaSet, startReplicas } from "../support/replicas.ts"
import { metricsView, waitForNoLeases } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

describe("leases", () => {
  let set: ReplicaSet
  beforeAll(async () => {
    set = await startReplicas(3)
  })
  afterAll(() => set?.stopAll())

  it("a lease held past LEASE_DURATION expires, and its late release changes nothing", async () => {
    const lb = await startBalancer({
      REPLICAS: set.origins,
      LB_ALGORITHM: "lease",
      LEASE_DURATION: "0.3",
      LEASE_CLEANUP_INTERVAL: "0.05",
    })
    onTestFinished(() => lb.close())

    const slow = request(`${lb.url}/slow?ms=1500`)
    const { leases } = await waitFor("the in-flight request's lease to expire", async () => {
      const metrics = await metricsView(lb.url)
      return metrics.leases.expired === 1 ? metrics : undefined
    })
    expect(leases).toMatchObject({ acquired: 1, released: 0, expired: 1, active: 0 })

    expect((await slow).status).toBe(200)
    // The response's end releases a lease already expired: no count may move, none go negative.
    const after = (await metricsView(lb.url)).leases
    expect(after).toMatchObject({ acquired: 1, released: 0, expired: 1, active: 0 })
  })

  it("a GET slower than UPSTREAM_RESPONSE_TIMEOUT is tried on a second replica, then gets a 504 JSON and no lease is left", async () => {
    const lb = await startBalancer({
      REPLICAS: set.origins,
      LB_ALGORITHM: "lease",
      UPSTREAM_RESPONSE_TIMEOUT: "0.5",
    })
    onTestFinished(() => lb.close())

    // A 504 and not the replicas' 200 after 5 s: the balancer gave up on both at its own timeout.
    const reply = await request(`${lb.url}/slow?ms=5000&head=late`)
    expect(reply.status).toBe(504)
    expect(json(reply)).toMatchObject({ error: "upstream_timeout" })
    const { metrics } = await waitForNoLeases(lb.url)
    expect(metrics.failures.upstream_timeout).toBe(1)
    expect(metrics.retries).toBe(1)
    expect(metrics.leases).toMatchObject({ acquired: 2, released: 2, active: 0 })
  })
})
