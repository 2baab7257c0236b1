// The balancer's connections to a replica, seen from the replica: idle ones closed after UPSTREAM_KEEPALIVE_TIMEOUT, never more than UPSTREAM_MAX_CONNECTIONS.
import { describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { startCluster } from "../support/cluster.ts"
import { request } from "../support/http.ts"
import { startReplicas } from "../support/replicas.ts"
import { waitFor } from "../support/wait.ts"

const balancerOver = async (env: Record<string, string>) => {
  const lb = await startBalancer(env)
  onTestFinished(() => lb.close())
  return lb
}

const expectOk = async (url: string) => expect((await request(url)).status).toBe(200)

describe("upstream connection pool", () => {
  it("UPSTREAM_KEEPALIVE_TIMEOUT: an idle pooled connection is closed, and the next request opens another", async () => {
    // The replicas would keep an idle connection for two minutes: any close before is the balancer's.
    const set = await startReplicas(2, { keepAliveTimeoutMs: 120_000 })
    onTestFinished(() => set.stopAll())
    const [shortReplica, longReplica] = [set.replicas[0]!, set.replicas[1]!]
    const short = await balancerOver({ REPLICAS: shortReplica.origin, UPSTREAM_KEEPALIVE_TIMEOUT: "0.3" })
    const long = await balancerOver({ REPLICAS: longReplica.origin, UPSTREAM_KEEPALIVE_TIMEOUT: "60" })

    await expectOk(`${short.url}/whoami`)
    for (let i = 0; i < 3; i++) await expectOk(`${long.url}/whoami`)
    // Requests in a row share one pooled connection.
    expect(longReplica.connections("/whoami")).toMatchObject({ opened: 1, open: 1 })

    await waitFor("the short keep-alive balancer to close its idle connection", () =>
      shortReplica.connections("/whoami").open === 0 ? true : undefined,
    )
    // Idle as long, under a longer setting: still pooled.
    expect(longReplica.connections("/whoami").open).toBe(1)

    await expectOk(`${short.url}/whoami`)
    await expectOk(`${long.url}/whoami`)
    expect(shortReplica.connections("/whoami").opened).toBe(2)
    expect(longReplica.connections("/whoami").opened).toBe(1)
  })

  it("UPSTREAM_MAX_CONNECTIONS: concurrent requests wait for the pool, never more connections than that", async () => {
    const max = 2
    const requests = 12
    const { set, lb } = await startCluster({ UPSTREAM_MAX_CONNECTIONS: String(max) }, { replicas: 1 })
    const [replica] = set.replicas

    const replies = await Promise.all(
      Array.from({ length: requests }, () => request(`${lb.url}/slow?ms=200`)),
    )

    expect(replies.map((reply) => reply.status)).toEqual(Array(requests).fill(200))
    expect(replica!.hits("/slow")).toBe(requests)
    // The limit was reached, and held.
    expect(replica!.connections("/slow").peak).toBe(max)
  })
})
