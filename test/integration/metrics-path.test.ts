// A moved LB_METRICS_PATH: the balancer's JSON answers at the new path, and GET /metrics belongs to the replicas.
import { describe, expect, it } from "vitest"
import { useCluster } from "../support/cluster.ts"
import { getJson, json, request } from "../support/http.ts"
import type { MetricsJson } from "../support/views.ts"

describe("LB_METRICS_PATH moved to /_lb/stats", () => {
  const cluster = useCluster({ LB_ALGORITHM: "round-robin", LB_METRICS_PATH: "/_lb/stats" })

  it("proxies GET and POST /metrics to the replicas", async () => {
    const answered = new Set<string>()
    for (let i = 0; i < 3; i++) {
      const reply = await request(`${cluster.lb.url}/metrics`)
      expect(reply.status).toBe(200)
      const echo = json<{ replica: string; url: string; method: string }>(reply)
      expect(echo).toMatchObject({ url: "/metrics", method: "GET" })
      expect(reply.headers["x-replica"]).toBe(echo.replica)
      answered.add(echo.replica)
    }
    expect(answered.size).toBe(3)
    const post = await request(`${cluster.lb.url}/metrics`, { method: "POST", body: Buffer.from("{}") })
    expect(post.status).toBe(200)
    expect(json(post)).toMatchObject({ url: "/metrics", method: "POST" })
  })

  it("answers its JSON at the new path, counting the proxied /metrics requests", async () => {
    const before = cluster.set.replicas.reduce((sum, replica) => sum + replica.hits("/metrics"), 0)
    const stats = await getJson<MetricsJson>(`${cluster.lb.url}/_lb/stats`)
    expect(stats.algorithm).toBe("round-robin")
    // Each /metrics request so far was a request like any other, not an answer of the balancer's.
    expect(stats.total_requests).toBe(before)
    expect(Object.values(stats.routing_decisions).reduce((sum, count) => sum + count, 0)).toBe(before)
    const reply = await request(`${cluster.lb.url}/_lb/stats`, { method: "POST", body: Buffer.from("{}") })
    expect(reply.status).toBe(405)
  })
})
