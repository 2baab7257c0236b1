// Locality on loopback: two fake agents report the replicas on two nodes; the balancer says it runs on
// one of them. The local replica takes the traffic while it keeps up, and the rest spills when it slows.
import { describe, expect, it, onTestFinished } from "vitest"
import { startAgent } from "../support/agent.ts"
import { startBalancer } from "../support/balancer.ts"
import { drive } from "../support/load.ts"
import { startReplicas } from "../support/replicas.ts"
import { metricsView, replicasView } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

describe("LOCALITY=node", () => {
  it("keeps traffic on the balancer's node while its replica keeps up, and spills when it slows down", async () => {
    const set = await startReplicas(3, { samePort: true })
    onTestFinished(() => set.stopAll())
    const [local, ...remote] = set.replicas
    const here = await startAgent([local!], { node: "node-a", host: "127.0.0.250" })
    onTestFinished(() => here.stop())
    const there = await startAgent(remote, { node: "node-b", host: "127.0.0.251" })
    onTestFinished(() => there.stop())
    const lb = await startBalancer({
      WORKER_NODES: `${here.node},${there.node}`,
      TARGET_PORT: String(local!.port),
      LB_ALGORITHM: "lease",
      LOCALITY: "node",
      NODE_NAME: "node-a",
    })
    onTestFinished(() => lb.close())
    await waitFor("the three replicas discovered", async () =>
      (await replicasView(lb.url)).length === 3 ? true : undefined,
    )

    // Light traffic (a request or two in flight): all of it stays on node-a.
    const light = await drive(lb.url, { requests: 1_000, concurrency: 2, path: "/slow?ms=2" })
    expect(light.failures).toEqual([])
    const lightShare = (light.shares[local!.name] ?? 0) / 1_000
    // The local replica slows down tenfold: it holds its requests longer and the excess spills.
    local!.setDelay(40)
    const slowed = await drive(lb.url, { requests: 1_000, concurrency: 8, path: "/slow?ms=4" })
    expect(slowed.failures).toEqual([])
    const slowedShare = (slowed.shares[local!.name] ?? 0) / 1_000
    const metrics = await metricsView(lb.url)
    console.log(
      `local share: light ${lightShare}, local replica slowed ${slowedShare}; ${JSON.stringify(metrics.locality)}`,
    )
    expect(lightShare).toBeGreaterThanOrEqual(0.95)
    expect(slowedShare).toBeLessThan(0.5)
    expect(metrics.locality?.spilled).toBeGreaterThan(0)
    expect(metrics.locality?.local).toBeGreaterThan(950)
    const rows = await replicasView(lb.url)
    expect(rows.filter((row) => row.local).map((row) => row.name)).toEqual([
      expect.stringContaining(local!.name),
    ])
  })
})
