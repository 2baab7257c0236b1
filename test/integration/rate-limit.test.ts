// Client rate limits counted in the balancer's own memory, through the real balancer on loopback: the
// admitted rate, the 429 answers and their headers, and what a budget is counted per.
import { describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { json, request } from "../support/http.ts"
import { paced } from "../support/paced.ts"
import { startReplicas } from "../support/replicas.ts"
import { routesFile } from "../support/routes-file.ts"
import { metricsView } from "../support/views.ts"

const startLimited = async (env: Record<string, string>) => {
  const set = await startReplicas(2)
  onTestFinished(() => set.stopAll())
  const lb = await startBalancer({ REPLICAS: set.origins, ...env })
  onTestFinished(() => lb.close())
  return lb
}

/** `count` GETs one after the other, each answer's status. */
const statuses = async (url: string, count: number, options: Parameters<typeof request>[1] = {}) => {
  const seen: Array<number> = []
  for (let i = 0; i < count; i++) seen.push((await request(url, options)).status)
  return seen
}

describe("client rate limits", () => {
  it("50/s with a burst of 10, offered 200/s for 10 s: 500 ± 1 % + 10 admitted, the rest 429 with headers", async () => {
    const lb = await startLimited({ RATE_LIMIT: "50/s", RATE_LIMIT_BURST: "10" })
    const run = await paced(lb.url, { rate: 200, durationMs: 10_000 })
    const admitted = run.count(200)
    const limited = run.count(429)
    const span = Math.max(...run.answers.map((answer) => answer.sentAtMs))
    console.log(
      `offered ${run.answers.length} over ${(span / 1000).toFixed(2)} s: ${admitted} admitted, ${limited} limited`,
    )
    expect(admitted + limited).toBe(run.answers.length)
    expect(admitted).toBeGreaterThanOrEqual(500 * 0.99 + 10)
    expect(admitted).toBeLessThanOrEqual(500 * 1.01 + 10)

    const refused = run.answers.find((answer) => answer.status === 429)!
    expect(refused.headers["retry-after"]).toBe("1")
    expect(refused.headers["ratelimit-policy"]).toBe('"default";q=50;w=1')
    expect(refused.headers.ratelimit).toMatch(/^"default";r=0;t=\d+$/)
    expect(JSON.parse(refused.detail)).toMatchObject({ error: "rate_limited", retry_after_seconds: 1 })
    const served = run.answers.find((answer) => answer.status === 200)!
    expect(served.headers.ratelimit).toMatch(/^"default";r=\d+;t=\d+$/)
    expect(served.headers["ratelimit-policy"]).toBe('"default";q=50;w=1')

    const { limits } = await metricsView(lb.url)
    expect(limits.rate_limit).toMatchObject({ admitted, limited, unknown_key: 0, unavailable: 0 })
    expect(limits.rate_limit_store).toMatchObject({ backend: "memory", degraded: false })
  })

  it("counts per client address; X-Forwarded-For only from a trusted proxy, read from the right", async () => {
    const lb = await startLimited({ RATE_LIMIT: "1/m", RATE_LIMIT_BURST: "2", TRUSTED_PROXIES: "127.0.0.1" })
    const url = `${lb.url}/whoami`
    // Two clients, two budgets of 2.
    expect(await statuses(url, 3, { localAddress: "127.0.0.10" })).toEqual([200, 200, 429])
    expect(await statuses(url, 3, { localAddress: "127.0.0.11" })).toEqual([200, 200, 429])
    // An untrusted client cannot pick its key with the header.
    const spoofed = (address: string) => ({
      localAddress: "127.0.0.10",
      headers: { "x-forwarded-for": address },
    })
    expect((await request(url, spoofed("192.0.2.1"))).status).toBe(429)
    // Behind the trusted proxy (127.0.0.1), the address it appended is the client, whatever the client wrote before it.
    const viaProxy = (chain: string) => ({ localAddress: "127.0.0.1", headers: { "x-forwarded-for": chain } })
    expect(await statuses(url, 3, viaProxy("203.0.113.9, 198.51.100.7"))).toEqual([200, 200, 429])
    expect((await request(url, viaProxy("203.0.113.10, 198.51.100.7"))).status).toBe(429)
    expect((await request(url, viaProxy("198.51.100.8"))).status).toBe(200)
  })

  it("counts per header value; requests without it share the unknown budget, counted", async () => {
    const lb = await startLimited({
      RATE_LIMIT: "1/m",
      RATE_LIMIT_BURST: "1",
      RATE_LIMIT_KEY: "header:x-api-key",
    })
    const url = `${lb.url}/whoami`
    const withKey = (key: string) => ({ headers: { "x-api-key": key } })
    expect(await statuses(url, 2, withKey("alice"))).toEqual([200, 429])
    expect(await statuses(url, 2, withKey("bob"))).toEqual([200, 429])
    expect(await statuses(url, 2)).toEqual([200, 429])
    const { limits } = await metricsView(lb.url)
    expect(limits.rate_limit).toMatchObject({ admitted: 3, limited: 3, unknown_key: 2 })
  })

  it("a route's own limit, and `none` on a route, over the balancer's", async () => {
    const set = await startReplicas(1)
    onTestFinished(() => set.stopAll())
    const origin = set.replicas[0]!.origin
    const file = routesFile(`
routes:
  - name: api
    rule: PathPrefix(\`/api\`)
    rate-limit: 2/m
    rate-limit-burst: 2
    rate-limit-key: route
    replicas: [${origin}]
  - name: open
    rule: PathPrefix(\`/open\`)
    rate-limit: none
    replicas: [${origin}]
  - name: rest
    rule: PathPrefix(\`/\`)
    replicas: [${origin}]
`)
    onTestFinished(() => file.remove())
    const lb = await startBalancer({ LB_ROUTES_FILE: file.path, RATE_LIMIT: "1/m", RATE_LIMIT_BURST: "1" })
    onTestFinished(() => lb.close())
    const api = await statuses(`${lb.url}/api/x`, 3)
    expect(api).toEqual([200, 200, 429])
    const limited = await request(`${lb.url}/api/x`)
    expect(limited.headers["ratelimit-policy"]).toBe('"api";q=2;w=60')
    expect(json(limited)).toMatchObject({ error: "rate_limited" })
    expect(await statuses(`${lb.url}/open/x`, 5)).toEqual([200, 200, 200, 200, 200])
    expect(await statuses(`${lb.url}/other`, 2)).toEqual([200, 429])
    const { routes } = await metricsView(lb.url)
    expect(routes.api!.limits.rate_limit).toMatchObject({ admitted: 2, limited: 2 })
    expect(routes.open!.limits.rate_limit).toBeNull()
  })
})
