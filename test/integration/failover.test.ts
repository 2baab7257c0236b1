// Replicas that stop: marked down, their traffic moved without client errors, and back when they return.
import { describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { startCluster } from "../support/cluster.ts"
import { downloadSha256, json, request } from "../support/http.ts"
import { startReplicas } from "../support/replicas.ts"
import { metricsView, replicasView, sharesOf, waitForHealth, waitForNoLeases } from "../support/views.ts"
import { waitFor, within } from "../support/wait.ts"

// Fast probes keep the waits short; thresholds stay at their defaults (3 failures down, 2 successes up).
const PROBES = { HEALTH_CHECK_INTERVAL: "0.2", HEALTH_CHECK_TIMEOUT: "1" }

describe("failover", () => {
  it.each([
    "round-robin",
    "lease",
  ])("%s: a stopped replica is marked down, its traffic moves, and it comes back", async (algorithm) => {
    const { set, lb } = await startCluster({ LB_ALGORITHM: algorithm, ...PROBES })
    const first = set.replicas[0]!
    const second = set.replicas[1]!
    const stopped = set.replicas[2]!
    // Warm the balancer's pools: its keep-alive connections to the replica are cut when it stops.
    await sharesOf(lb.url, 9)

    await stopped.stop()
    // Until it is marked down, requests still reach it, fail to connect, and are retried elsewhere.
    const during = await sharesOf(lb.url, 30)
    expect(during[stopped.name]).toBeUndefined()
    const row = await waitForHealth(lb.url, stopped.id, false)
    // Set by whichever saw the failure last: the proxy (ECONNREFUSED) or the probe ("Transport error").
    expect(row.last_error).toBeTruthy()
    expect(row.consecutive_failures).toBeGreaterThanOrEqual(3)

    const after = await sharesOf(lb.url, 60)
    expect(after[stopped.name]).toBeUndefined()
    expect(after[first.name]).toBeGreaterThanOrEqual(25)
    expect(after[second.name]).toBeGreaterThanOrEqual(25)
    const metrics = await metricsView(lb.url)
    expect(metrics.responses["5xx"]).toBe(0)
    // The connection failures before the mark-down were retried, not passed on to clients.
    expect(metrics.retries).toBeGreaterThan(0)
    expect(metrics.failures.upstream_error).toBe(0)

    await stopped.restart()
    await waitForHealth(lb.url, stopped.id, true)
    const back = await sharesOf(lb.url, 30)
    expect(back[stopped.name]).toBeGreaterThanOrEqual(5)
  })

  it("a connection reset before any response byte: idempotent requests are retried, others get a 502", async () => {
    const { set, lb } = await startCluster({ LB_ALGORITHM: "round-robin", ...PROBES })
    const dropping = set.replicas[2]!
    for (let i = 0; i < 9; i++) {
      const reply = await request(`${lb.url}/reset?on=${dropping.name}`)
      expect(reply.status).toBe(200)
      expect(json<{ replica: string }>(reply).replica).not.toBe(dropping.name)
    }
    const metrics = await metricsView(lb.url)
    // Every connection the replica dropped was retried once, elsewhere.
    expect(metrics.retries).toBeGreaterThan(0)
    expect(metrics.retries).toBe(dropping.hits("/reset"))
    expect(metrics.failures.upstream_error).toBe(0)
    // A reset is no sign of a dead replica: it stays in the pool.
    expect((await replicasView(lb.url)).find((row) => row.id === dropping.id)?.healthy).toBe(true)

    const posts = await Promise.all(
      [0, 1, 2].map(() =>
        request(`${lb.url}/reset?on=${dropping.name}`, { method: "POST", body: Buffer.from("x") }),
      ),
    )
    expect(posts.map((reply) => reply.status).sort()).toEqual([200, 200, 502])
  })

  it("a replica that dies mid-response: the client sees the response cut short and no lease is left", async () => {
    const { set, lb } = await startCluster({ LB_ALGORITHM: "round-robin", ...PROBES })

    const download = downloadSha256(`${lb.url}/download?bytes=${1024 * 1024 * 1024}`)
    const serving = await waitFor("a replica to start serving the download", () =>
      set.replicas.find((replica) => replica.hits("/download") > 0),
    )
    await serving.stop()

    // Too late for a status: a complete-looking response would be a lie, so the connection is cut.
    await expect(within("the cut download to end", 15_000, download)).rejects.toThrow(
      /aborted|socket hang up|ECONNRESET/i,
    )
    const { metrics } = await waitForNoLeases(lb.url)
    expect(metrics.failures.upstream_error).toBe(1)
    expect((await request(`${lb.url}/whoami`)).status).toBe(200)
  })

  it("answers 503 JSON in panic mode when every replica is down", async () => {
    const { set, lb } = await startCluster({ LB_ALGORITHM: "lease", ...PROBES })
    await set.stopAll()

    await waitFor("every replica to be marked down", async () =>
      (await replicasView(lb.url)).every((row) => !row.healthy) ? true : undefined,
    )
    const reply = await request(`${lb.url}/whoami`)
    expect(reply.status).toBe(503)
    expect(reply.headers["content-type"]).toMatch(/^application\/json/)
    expect(json(reply)).toMatchObject({ error: "no_healthy_replica" })
    const metrics = await metricsView(lb.url)
    expect(metrics.panic_decisions).toBeGreaterThan(0)
    const health = json<Record<string, unknown>>(await request(`${lb.url}/_lb/health`))
    expect(health).toMatchObject({ replicas_known: 3, replicas_healthy: 0 })
  })

  it("answers 503 JSON when no replica is known", async () => {
    // An agent address where nothing listens: discovery stays empty.
    const closed = await startReplicas(1)
    await closed.stopAll()
    const agent = closed.replicas[0]!
    const lb = await startBalancer({
      REPLICAS: "",
      WORKER_NODES: `${agent.host}:${agent.port}`,
      CACHE_TTL: "0.2",
      AGENT_TIMEOUT: "1",
    })
    onTestFinished(() => lb.close())

    const reply = await request(`${lb.url}/whoami`)
    expect(reply.status).toBe(503)
    expect(reply.headers["content-type"]).toMatch(/^application\/json/)
    const body = json<{ error?: unknown; message?: unknown }>(reply)
    expect(body.error).toBe("no_replica")
    expect(typeof body.message).toBe("string")
    expect(await replicasView(lb.url)).toEqual([])
  })

  it("answers 502 JSON when the only replica refuses the connection, spending no retry on nowhere", async () => {
    const gone = await startReplicas(1)
    await gone.stopAll()
    const lb = await startBalancer({ REPLICAS: gone.origins })
    onTestFinished(() => lb.close())

    const reply = await request(`${lb.url}/whoami`)
    expect(reply.status).toBe(502)
    expect(json<{ error?: unknown }>(reply).error).toBe("upstream_error")
    const metrics = await metricsView(lb.url)
    expect(metrics.retries).toBe(0)
    expect(metrics.retries_denied).toBe(0)
  })
})
