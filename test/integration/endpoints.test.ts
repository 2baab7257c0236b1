// The balancer's own endpoints (`GET /metrics`, `/_lb/*`) and the proxying of everything else, `/health` included.
import { describe, expect, it } from "vitest"
import { useCluster } from "../support/cluster.ts"
import { json, request } from "../support/http.ts"
import { metricsView, replicasView } from "../support/views.ts"

describe("endpoints", () => {
  const cluster = useCluster({ LB_ALGORITHM: "round-robin" })

  it("proxies GET /health to the replicas", async () => {
    const answered = new Set<string>()
    for (let i = 0; i < 3; i++) {
      const reply = await request(`${cluster.lb.url}/health`)
      expect(reply.status).toBe(200)
      const body = json<{ status: string; replica: string }>(reply)
      expect(body.status).toBe("healthy")
      expect(reply.headers["x-replica"]).toBe(body.replica)
      answered.add(body.replica)
    }
    // Round-robin: three requests, three replicas.
    expect(answered.size).toBe(3)
  })

  it("GET /metrics answers the PRD's JSON", async () => {
    await request(`${cluster.lb.url}/whoami`)
    const reply = await request(`${cluster.lb.url}/metrics`)
    expect(reply.status).toBe(200)
    expect(reply.headers["content-type"]).toMatch(/^application\/json/)
    expect(reply.headers["x-replica"]).toBeUndefined()
    const metrics = await metricsView(cluster.lb.url)
    expect(metrics.total_requests).toBeGreaterThanOrEqual(1)
    expect(typeof metrics.requests_per_second).toBe("number")
    expect(metrics.requests_per_second).toBeGreaterThan(0)
    expect(typeof metrics.avg_routing_time_ms).toBe("number")
    expect(metrics.avg_routing_time_ms).toBeGreaterThanOrEqual(0)
    expect(Object.keys(metrics.routing_decisions).length).toBeGreaterThan(0)
    for (const [id, count] of Object.entries(metrics.routing_decisions)) {
      expect(cluster.set.replicas.map((replica) => replica.id)).toContain(id)
      expect(count).toBeGreaterThan(0)
    }
    // Round-robin reads no metrics, so it has no cache to hit: the field is there, null.
    expect(metrics).toHaveProperty("cache_hit_rate", null)
  })

  it("GET /_lb/health and /_lb/replicas describe the replicas", async () => {
    const health = json<Record<string, unknown>>(await request(`${cluster.lb.url}/_lb/health`))
    expect(health).toMatchObject({
      status: "ok",
      algorithm: "round-robin",
      replicas_known: 3,
      replicas_healthy: 3,
    })
    const rows = await replicasView(cluster.lb.url)
    expect(rows.map((row) => row.id).sort()).toEqual(cluster.set.replicas.map((replica) => replica.id).sort())
    for (const row of rows) {
      expect(row.origin).toBe(cluster.set.replicas.find((replica) => replica.id === row.id)?.origin)
      expect(row.healthy).toBe(true)
      expect(row.active_leases).toBe(0)
    }
  })

  it("answers 404 JSON for an unknown /_lb/ path", async () => {
    const reply = await request(`${cluster.lb.url}/_lb/nothing-here`)
    expect(reply.status).toBe(404)
    expect(reply.headers["content-type"]).toMatch(/^application\/json/)
    expect(json(reply)).toMatchObject({ error: "not_found" })
  })

  it("answers 405 to POST /metrics", async () => {
    const reply = await request(`${cluster.lb.url}/metrics`, { method: "POST", body: Buffer.from("{}") })
    expect(reply.status).toBe(405)
    expect(reply.headers.allow).toContain("GET")
    expect(json(reply)).toMatchObject({ error: "method_not_allowed" })
  })
})
