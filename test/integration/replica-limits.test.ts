// REPLICA_MAX_REQUESTS with its queue, through the real balancer to real replicas on loopback: a replica
// never holds more than its cap, the others take the rest, and what cannot wait gets 503 JSON.
import { describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { hold, json, request } from "../support/http.ts"
import { drive } from "../support/load.ts"
import { startReplicas } from "../support/replicas.ts"
import { routesFile } from "../support/routes-file.ts"
import { metricsView } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

const startLimited = async (count: number, env: Record<string, string>) => {
  const set = await startReplicas(count)
  onTestFinished(() => set.stopAll())
  const lb = await startBalancer({ REPLICAS: set.origins, ...env })
  onTestFinished(() => lb.close())
  return { set, lb }
}

/** `count` GETs of `path` at once, each on its own connection. */
const burst = (url: string, count: number) =>
  Promise.all(Array.from({ length: count }, () => request(url, { timeoutMs: 10_000 })))

const queueOf = async (lb: string) => (await metricsView(lb)).limits.queue

describe("per-replica limits", () => {
  it("cap 2 with a slow replica and 20 clients: no replica sees a third request, the fast ones take the rest", async () => {
    const { set, lb } = await startLimited(3, { REPLICA_MAX_REQUESTS: "2", QUEUE_TIMEOUT: "10" })
    const [slow, ...fast] = set.replicas
    slow!.setDelay(200)
    for (const replica of fast) replica.setDelay(5)
    const tally = await drive(lb.url, { requests: 1_000, concurrency: 20 })
    console.log(
      `peaks ${set.replicas.map((r) => r.peakInFlight()).join("/")}, shares ${JSON.stringify(tally.shares)}`,
    )
    expect(tally.failures).toEqual([])
    for (const replica of set.replicas) expect(replica.peakInFlight()).toBeLessThanOrEqual(2)
    // At most 2 of 20 in flight, 200 ms each, on the slow one: the fast ones carry nearly everything.
    expect(tally.shares[slow!.name] ?? 0).toBeLessThan(100)
    const queue = await queueOf(lb.url)
    expect(queue.served).toBeGreaterThan(0)
    expect(queue.length).toBe(0)
    expect(queue.timed_out + queue.full).toBe(0)
  })

  it("a route's max-requests and a replica's own, from the routes file", async () => {
    const set = await startReplicas(2)
    onTestFinished(() => set.stopAll())
    const [first, second] = set.replicas
    const file = routesFile(`
routes:
  - name: capped
    rule: PathPrefix(\`/\`)
    max-requests: 3
    replicas:
      - url: ${first!.origin}
        max-requests: 1
      - ${second!.origin}
`)
    onTestFinished(() => file.remove())
    const lb = await startBalancer({ LB_ROUTES_FILE: file.path })
    onTestFinished(() => lb.close())
    first!.setDelay(50)
    second!.setDelay(50)
    const tally = await drive(lb.url, { requests: 120, concurrency: 12 })
    expect(tally.failures).toEqual([])
    expect(first!.peakInFlight()).toBe(1)
    expect(second!.peakInFlight()).toBe(3)
  })

  it("a wait past QUEUE_TIMEOUT gets 503 queue_timeout JSON with Retry-After", async () => {
    const { set, lb } = await startLimited(3, {
      REPLICA_MAX_REQUESTS: "1",
      QUEUE_TIMEOUT: "0.2",
    })
    for (const replica of set.replicas) replica.setDelay(1_000)
    const replies = await burst(`${lb.url}/whoami`, 10)
    const served = replies.filter((reply) => reply.status === 200)
    const refused = replies.filter((reply) => reply.status === 503)
    expect(served).toHaveLength(3)
    expect(refused).toHaveLength(7)
    for (const reply of refused) {
      expect(reply.headers["retry-after"]).toBe("1")
      expect(reply.headers["content-type"]).toBe("application/json")
      expect(json(reply)).toMatchObject({ error: "queue_timeout" })
    }
    const queue = await queueOf(lb.url)
    expect(queue).toMatchObject({ queued: 7, timed_out: 7, length: 0 })
    expect(queue.avg_wait_ms).toBeGreaterThanOrEqual(190)
    expect((await metricsView(lb.url)).failures.queue_timeout).toBe(7)
  })

  it("a full queue answers 503 queue_full at once", async () => {
    const { set, lb } = await startLimited(2, { REPLICA_MAX_REQUESTS: "1", QUEUE_SIZE: "3" })
    for (const replica of set.replicas) replica.setDelay(300)
    const started = performance.now()
    const replies = await burst(`${lb.url}/whoami`, 10)
    const statuses = replies.map((reply) => reply.status).sort()
    // 2 in flight, 3 queued and served in turn, 5 turned away.
    expect(statuses).toEqual([200, 200, 200, 200, 200, 503, 503, 503, 503, 503])
    for (const reply of replies.filter(({ status }) => status === 503)) {
      expect(json(reply)).toMatchObject({ error: "queue_full" })
      expect(reply.headers["retry-after"]).toBe("1")
    }
    expect(performance.now() - started).toBeLessThan(5_000)
    expect(await queueOf(lb.url)).toMatchObject({ queued: 3, served: 3, full: 5 })
  })

  it("a client that leaves while queued frees its place, and the next in line is served", async () => {
    const { set, lb } = await startLimited(1, { REPLICA_MAX_REQUESTS: "1", QUEUE_SIZE: "1" })
    set.replicas[0]!.setDelay(300)
    const first = hold(`${lb.url}/whoami`)
    await waitFor("the first request to be in flight", () =>
      set.replicas[0]!.peakInFlight() === 1 ? true : undefined,
    )
    const leaving = hold(`${lb.url}/whoami`)
    await waitFor("the second request to queue", async () =>
      (await queueOf(lb.url)).length === 1 ? true : undefined,
    )
    leaving.abort()
    await waitFor("the queue to be empty", async () =>
      (await queueOf(lb.url)).length === 0 ? true : undefined,
    )
    // Its place is free: a third request queues (the queue holds one) and is served after the first.
    const third = request(`${lb.url}/whoami`)
    expect((await first.response).status).toBe(200)
    expect((await third).status).toBe(200)
    expect(await queueOf(lb.url)).toMatchObject({ queued: 2, served: 1, abandoned: 1, full: 0 })
  })

  it("exposes queue length, waits and rejections to Prometheus", async () => {
    const { set, lb } = await startLimited(1, { REPLICA_MAX_REQUESTS: "1", QUEUE_SIZE: "1" })
    set.replicas[0]!.setDelay(100)
    await burst(`${lb.url}/whoami`, 3)
    const text = (await request(`${lb.url}/_lb/metrics`)).body.toString("utf8")
    expect(text).toContain('swarmguard_lb_queue_length{route="default"} 0')
    expect(text).toContain('swarmguard_lb_queue_rejections_total{route="default",reason="full"} 1')
    expect(text).toMatch(/swarmguard_lb_queue_wait_seconds_count\{route="default"\} 1\n/)
  })
})
