// Client rate limits shared through a real Redis by two balancer processes on loopback: one budget for
// both while Redis answers, each its own while Redis is down (or 503 with RATE_LIMIT_ON_REDIS_ERROR=deny),
// and one budget again within two seconds of Redis's return.
import { setTimeout as sleep } from "node:timers/promises"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { type BalancerProcess, spawnBalancer } from "../../src/process/balancer.ts"
import { getJson, json, request } from "../support/http.ts"
import { type PacedAnswer, paced } from "../support/paced.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { type ReplicaSet, startReplicas } from "../support/replicas.ts"
import { metricsView } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

/** The shared budget: 100 requests a second, 10 at once. */
const RATE = 100
const BURST = 10
/** What each balancer is offered: half again the whole budget, so both always want more than it. */
const OFFERED = 150
const RUN_MS = 10_000
const POLICY = `"default";q=${RATE};w=1`
/** ensureDebianPackage's bound on installing redis-server. */
const INSTALL_MS = 300_000
/** ± 5 % of the steady rate's share of a window, the burst on top. */
const TOLERANCE = 0.05

interface Health {
  readonly status: "ok" | "degraded"
  readonly degraded?: ReadonlyArray<string>
}

const healthOf = (lb: BalancerProcess) => getJson<Health>(`${lb.url}/_lb/health`)
const limitsOf = async (lb: BalancerProcess) => (await metricsView(lb.url)).limits

/** Polls every 10 ms until `/_lb/health` says `status`; resolves with when it did (performance.now()). */
const untilHealth = (lb: BalancerProcess, status: Health["status"], timeoutMs = 5_000) =>
  waitFor(
    `${lb.url}/_lb/health to say ${status}`,
    async () => ((await healthOf(lb)).status === status ? performance.now() : undefined),
    { timeoutMs, intervalMs: 10 },
  )

const admittedIn = (answers: ReadonlyArray<PacedAnswer>) =>
  answers.filter((answer) => answer.status === 200).length

/** Statuses other than 200 and 429, socket errors (status 0) among them: what no client may see. */
const unexpected = (answers: ReadonlyArray<PacedAnswer>) =>
  answers
    .filter((answer) => answer.status !== 200 && answer.status !== 429)
    .map((answer) => `${answer.status} ${answer.detail.slice(0, 120)}`)

/** Admitted in a window of `ms` at the shared rate: the rate's share ± 5 %, and the burst on top. */
const expectOneBudget = (admitted: number, ms: number, what: string) => {
  const steady = (RATE * ms) / 1000
  expect(admitted, what).toBeGreaterThanOrEqual(Math.floor(steady * (1 - TOLERANCE)))
  expect(admitted, what).toBeLessThanOrEqual(Math.ceil(steady * (1 + TOLERANCE)) + BURST)
}

describe("rate limits shared through Redis", () => {
  let redis: RedisServer
  let set: ReplicaSet
  let lbs: ReadonlyArray<BalancerProcess> = []

  const limitedEnv = (policy: "allow" | "deny"): Record<string, string> => ({
    REPLICAS: set.origins,
    RATE_LIMIT: `${RATE}/s`,
    RATE_LIMIT_BURST: String(BURST),
    // One budget for every client: the test's requests all come from 127.0.0.1 anyway.
    RATE_LIMIT_KEY: "route",
    RATE_LIMIT_REDIS_URL: redis.url,
    RATE_LIMIT_ON_REDIS_ERROR: policy,
  })

  beforeAll(async () => {
    // A machine without redis-server installs it first: the hook's time allows for that.
    redis = await startRedis()
    set = await startReplicas(2)
    lbs = await Promise.all(
      ["balancer-a", "balancer-b"].map((name) => spawnBalancer(limitedEnv("allow"), { name })),
    )
    for (const lb of lbs) await untilHealth(lb, "ok")
    // The first requests through a fresh process are slow (connections, code paths compiled); they
    // would shift the first run's schedule. The budget is full again 100 ms later.
    for (const lb of lbs) for (let i = 0; i < 5; i++) await request(`${lb.url}/whoami`)
    await sleep(200)
  }, INSTALL_MS + 60_000)

  afterAll(async () => {
    await Promise.all(lbs.map((lb) => lb.close()))
    await set?.stopAll()
    await redis?.stop()
  })

  it("two balancers offered 150/s each for 10 s admit 1,000 ± 5 % + burst together; 429s carry the headers", async () => {
    const before = await Promise.all(lbs.map(limitsOf))
    const runs = await Promise.all(lbs.map((lb) => paced(lb.url, { rate: OFFERED, durationMs: RUN_MS })))
    const after = await Promise.all(lbs.map(limitsOf))

    const answers = runs.flatMap((run) => run.answers)
    const admitted = runs.map((run) => run.count(200))
    const limited = runs.map((run) => run.count(429))
    const total = admitted[0]! + admitted[1]!
    console.log(
      `shared 100/s, burst 10, 2 × 150/s for 10 s: ${total} admitted (${admitted.join(" + ")}), ` +
        `${limited[0]! + limited[1]!} limited (${limited.join(" + ")}), of ${answers.length}`,
    )
    expect(unexpected(answers)).toEqual([])
    expectOneBudget(total, RUN_MS, "admitted by both balancers together")

    for (const answer of answers.filter(({ status }) => status === 429)) {
      expect(answer.headers["retry-after"]).toBe("1")
      expect(answer.headers["ratelimit-policy"]).toBe(POLICY)
      expect(answer.headers.ratelimit).toMatch(/^"default";r=0;t=\d+$/)
      expect(JSON.parse(answer.detail)).toMatchObject({ error: "rate_limited", retry_after_seconds: 1 })
    }
    for (const answer of answers.filter(({ status }) => status === 200)) {
      expect(answer.headers["ratelimit-policy"]).toBe(POLICY)
      expect(answer.headers.ratelimit).toMatch(/^"default";r=\d+;t=\d+$/)
    }

    // Each balancer counted what it answered, and Redis decided every request.
    lbs.forEach((_, i) => {
      expect(after[i]!.rate_limit!.admitted - before[i]!.rate_limit!.admitted).toBe(admitted[i])
      expect(after[i]!.rate_limit!.limited - before[i]!.rate_limit!.limited).toBe(limited[i])
      const [was, now] = [before[i]!.rate_limit_store, after[i]!.rate_limit_store]
      expect(now).toMatchObject({ backend: "redis", degraded: false })
      expect(now.outages - was.outages).toBe(0)
      expect(now.redis_errors - was.redis_errors).toBe(0)
      expect(now.local_decisions - was.local_decisions).toBe(0)
    })
  })

  it("Redis killed halfway: every answer is 200 or 429, and each balancer keeps its own 100/s + burst", async () => {
    const before = await Promise.all(lbs.map(limitsOf))
    const started = performance.now()
    const running = Promise.all(lbs.map((lb) => paced(lb.url, { rate: OFFERED, durationMs: RUN_MS })))
    await sleep(RUN_MS / 2 - (performance.now() - started))
    const killedAtMs = performance.now() - started
    await redis.kill()
    const runs = await running

    const answers = runs.flatMap((run) => run.answers)
    const sharedHalf = admittedIn(answers.filter(({ sentAtMs }) => sentAtMs < killedAtMs))
    const ownHalves = runs.map((run) =>
      admittedIn(run.answers.filter(({ sentAtMs }) => sentAtMs >= killedAtMs)),
    )
    const [health, after] = await Promise.all([
      Promise.all(lbs.map(healthOf)),
      Promise.all(lbs.map(limitsOf)),
    ])
    console.log(
      `Redis killed at ${(killedAtMs / 1000).toFixed(3)} s: ${sharedHalf} admitted before (one budget), ` +
        `${ownHalves.join(" + ")} = ${ownHalves[0]! + ownHalves[1]!} after (each its own); ` +
        `outages ${after.map((limits) => limits.rate_limit_store.outages).join("/")}, ` +
        `local decisions ${after.map((limits) => limits.rate_limit_store.local_decisions).join("/")}, ` +
        `health ${health.map(({ status }) => status).join("/")}`,
    )

    expect(unexpected(answers)).toEqual([])
    expectOneBudget(sharedHalf, killedAtMs, "admitted by both before the kill")
    const ownMs = RUN_MS - killedAtMs
    for (const own of ownHalves) expectOneBudget(own, ownMs, "admitted by one balancer after the kill")
    // Two budgets now: about twice what one admits in the same time.
    const both = ownHalves[0]! + ownHalves[1]!
    expect(both).toBeGreaterThanOrEqual(2 * Math.floor(((RATE * ownMs) / 1000) * (1 - TOLERANCE)))

    lbs.forEach((_, i) => {
      expect(health[i]).toEqual(
        expect.objectContaining({ status: "degraded", degraded: ["rate_limit_redis_unreachable"] }),
      )
      const store = after[i]!.rate_limit_store
      expect(store.degraded).toBe(true)
      expect(store.outages - before[i]!.rate_limit_store.outages).toBeGreaterThanOrEqual(1)
      expect(store.local_decisions).toBeGreaterThan(0)
      expect(after[i]!.rate_limit!.unavailable).toBe(0)
    })
  })

  it("Redis restarted: both balancers share again within 2 s, and count one budget", async () => {
    if (redis.running()) await redis.kill()
    for (const lb of lbs) await untilHealth(lb, "degraded")

    const restartedAt = performance.now()
    await redis.restart()
    const answeringMs = performance.now() - restartedAt
    const backMs = await Promise.all(lbs.map(async (lb) => (await untilHealth(lb, "ok")) - restartedAt))
    const stores = (await Promise.all(lbs.map(limitsOf))).map((limits) => limits.rate_limit_store)
    console.log(
      `Redis restarted: answering PING after ${answeringMs.toFixed(0)} ms; /_lb/health ok after ` +
        `${backMs.map((ms) => ms.toFixed(0)).join(" / ")} ms`,
    )
    expect(Math.max(...backMs)).toBeLessThan(2_000)
    for (const store of stores) expect(store.degraded).toBe(false)

    // Redis came back empty, with a full budget; a short run spends from that one budget only.
    const SHORT_MS = 3_000
    const runs = await Promise.all(lbs.map((lb) => paced(lb.url, { rate: OFFERED, durationMs: SHORT_MS })))
    const after = (await Promise.all(lbs.map(limitsOf))).map((limits) => limits.rate_limit_store)
    const answers = runs.flatMap((run) => run.answers)
    const admitted = runs.map((run) => run.count(200))
    console.log(
      `after the restart, 2 × 150/s for 3 s: ${admitted[0]! + admitted[1]!} admitted (${admitted.join(" + ")}), ` +
        `local decisions during the run ${after.map((store, i) => store.local_decisions - stores[i]!.local_decisions).join("/")}`,
    )
    expect(unexpected(answers)).toEqual([])
    expectOneBudget(admitted[0]! + admitted[1]!, SHORT_MS, "admitted by both after the restart")
    after.forEach((store, i) => {
      expect(store.degraded).toBe(false)
      expect(store.outages).toBe(stores[i]!.outages)
      expect(store.local_decisions).toBe(stores[i]!.local_decisions)
    })
  })

  it("RATE_LIMIT_ON_REDIS_ERROR=deny with Redis down: 503 rate_limit_unavailable, admin endpoints still served", async () => {
    await redis.restart()
    const lb = await spawnBalancer(limitedEnv("deny"), { name: "balancer-deny" })
    onTestFinished(() => lb.close())
    await untilHealth(lb, "ok")
    expect((await request(`${lb.url}/whoami`)).status).toBe(200)

    await redis.kill()
    await untilHealth(lb, "degraded")
    const hits = () => set.replicas.reduce((sum, replica) => sum + replica.hits("/whoami"), 0)
    const reached = hits()
    const replies = []
    for (let i = 0; i < 20; i++) replies.push(await request(`${lb.url}/whoami`))
    console.log(`deny, Redis down: ${replies.map((reply) => reply.status).join(",")}`)
    for (const reply of replies) {
      expect(reply.status).toBe(503)
      expect(reply.headers["content-type"]).toBe("application/json")
      expect(reply.headers["retry-after"]).toBe("1")
      expect(json(reply)).toMatchObject({ error: "rate_limit_unavailable" })
    }
    expect(hits(), "requests that reached a replica").toBe(reached)

    // The balancer's own endpoints are not rate-limited, and say why the others are refused.
    const { limits } = await metricsView(lb.url)
    expect(limits.rate_limit).toMatchObject({ admitted: 1, limited: 0, unavailable: 20 })
    expect(limits.rate_limit_store).toMatchObject({
      backend: "redis",
      degraded: true,
      unavailable_decisions: 20,
      local_decisions: 0,
    })
    expect(limits.rate_limit_store.outages).toBeGreaterThanOrEqual(1)
    expect(await healthOf(lb)).toMatchObject({
      status: "degraded",
      degraded: ["rate_limit_redis_unreachable"],
    })
    for (const path of ["/_lb/replicas", "/_lb/routes"]) {
      expect((await request(`${lb.url}${path}`)).status, path).toBe(200)
    }
    const exposition = await request(`${lb.url}/_lb/metrics`)
    expect(exposition.status).toBe(200)
    const text = exposition.body.toString("utf8")
    expect(text).toContain("swarmguard_lb_rate_limit_redis_degraded 1")
    expect(text).toContain(
      'swarmguard_lb_rate_limit_decisions_total{route="default",decision="unavailable"} 20',
    )

    // And once Redis is back, requests are admitted again.
    await redis.restart()
    await untilHealth(lb, "ok")
    expect((await request(`${lb.url}/whoami`)).status).toBe(200)
  })

  it("a Redis that answers but refuses the script (a read-only replica) is one outage, until it decides again", async () => {
    await redis.restart()
    for (const lb of lbs) await untilHealth(lb, "ok")
    const lb = lbs[0]!
    const before = (await limitsOf(lb)).rate_limit_store
    const admin = new Redis(redis.url)
    onTestFinished(() => admin.disconnect())
    // As after a failover: PING is answered, writes are refused.
    await admin.call("REPLICAOF", "127.0.0.1", "1")
    const statuses = new Set<number>()
    const healths = new Set<string>()
    for (let i = 0; i < 40; i++) {
      statuses.add((await request(`${lb.url}/whoami`)).status)
      healths.add((await healthOf(lb)).status)
      await sleep(25)
    }
    const during = (await limitsOf(lb)).rate_limit_store
    console.log(`read-only Redis for 40 requests: statuses ${[...statuses]}, health ${[...healths]}`)
    expect([...statuses]).toEqual([200])
    expect([...healths]).toEqual(["degraded"])
    expect(during.outages).toBe(before.outages + 1)
    expect(during.degraded).toBe(true)
    await admin.call("REPLICAOF", "NO", "ONE")
    const restored = performance.now()
    expect((await untilHealth(lb, "ok")) - restored).toBeLessThan(2_000)
  })
})
