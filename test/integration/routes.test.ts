// Routes from a routes file, through the real balancer to real replicas on loopback: rules by host and
// path, prefixes stripped, weights, hot reload under load, and bad edits refused.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { getJson, json, request } from "../support/http.ts"
import { drive } from "../support/load.ts"
import { type ReplicaSet, startReplicas } from "../support/replicas.ts"
import { routesFile } from "../support/routes-file.ts"
import { metricsView, replicasView } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

interface Echo {
  readonly replica: string
  readonly url: string
  readonly headers: Record<string, string>
}

interface RoutesView {
  readonly source: string
  readonly loaded_at: string
  readonly reloads: { readonly applied: number; readonly refused: number; readonly last_error: string | null }
  readonly routes: ReadonlyArray<{ readonly name: string; readonly rule: string; readonly algorithm: string }>
}

const routesView = (lb: string) => getJson<RoutesView>(`${lb}/_lb/routes`)

/** Waits until `check` holds. */
const until = (what: string, check: () => Promise<boolean>) =>
  waitFor(what, async () => ((await check()) ? true : undefined))

describe("routes", () => {
  let set: ReplicaSet
  beforeAll(async () => {
    set = await startReplicas(4)
  })
  afterAll(() => set?.stopAll())
  const origin = (i: number) => set.replicas[i]!.origin

  const start = async (text: string, env: Record<string, string> = {}) => {
    const file = routesFile(text)
    onTestFinished(() => file.remove())
    const lb = await startBalancer({ LB_ROUTES_FILE: file.path, ROUTES_POLL_INTERVAL: "0.05", ...env })
    onTestFinished(() => lb.close())
    return { lb, file }
  }

  const get = async (lb: string, path: string, host: string) => {
    const reply = await request(`${lb}${path}`, { headers: { host } })
    return {
      status: reply.status,
      body: json<Echo & { error?: string; host?: string; path?: string }>(reply),
    }
  }

  it("routes by host and by path prefix, strips the prefix, and answers 404 where no rule matches", async () => {
    const { lb } = await start(`
routes:
  - name: api
    rule: Host(\`api.local\`) && PathPrefix(\`/v1\`)
    strip-prefix: /v1
    algorithm: round-robin
    replicas: [${origin(0)}, ${origin(1)}]
  - name: web
    rule: Host(\`www.local\`)
    replicas: [${origin(2)}, ${origin(3)}]
`)
    const api: Record<string, number> = {}
    for (let i = 0; i < 40; i++) {
      const { status, body } = await get(lb.url, `/v1/users/${i}?page=2`, "API.local:8081")
      expect(status).toBe(200)
      expect(body.url).toBe(`/users/${i}?page=2`)
      expect(body.headers["x-forwarded-prefix"]).toBe("/v1")
      expect(body.headers.host).toBe("API.local:8081")
      api[body.replica] = (api[body.replica] ?? 0) + 1
    }
    expect(api).toEqual({ "replica-1": 20, "replica-2": 20 })

    const web: Record<string, number> = {}
    for (let i = 0; i < 40; i++) {
      const { status, body } = await get(lb.url, `/v1/users/${i}`, "www.local")
      expect(status).toBe(200)
      // Another route's prefix means nothing here: the path goes as it came.
      expect(body.url).toBe(`/v1/users/${i}`)
      expect(body.headers["x-forwarded-prefix"]).toBeUndefined()
      web[body.replica] = (web[body.replica] ?? 0) + 1
    }
    expect(Object.keys(web).sort()).toEqual(["replica-3", "replica-4"])
    expect(web["replica-3"]! + web["replica-4"]!).toBe(40)

    // api.local outside /v1 matches neither rule.
    const missed = await get(lb.url, "/v2/users", "api.local")
    expect(missed.status).toBe(404)
    expect(missed.body).toMatchObject({ error: "no_route", host: "api.local", path: "/v2/users" })
    expect((await get(lb.url, "/v1/again", "api.local")).status).toBe(200)

    const metrics = await metricsView(lb.url)
    expect(metrics.failures.no_route).toBe(1)
    expect(metrics.routes.api?.total_requests).toBe(41)
    expect(metrics.routes.web?.total_requests).toBe(40)
    expect(metrics.total_requests).toBe(82)
    const rows = await replicasView(lb.url)
    expect(rows.map((row) => `${row.route} ${row.origin}`).sort()).toEqual(
      [`api ${origin(0)}`, `api ${origin(1)}`, `web ${origin(2)}`, `web ${origin(3)}`].sort(),
    )
    const view = await routesView(lb.url)
    expect(view.source).toMatch(/^file .*routes\.yml$/)
    expect(Date.parse(view.loaded_at)).toBeGreaterThan(Date.now() - 60_000)
    expect(view.routes.map((route) => [route.name, route.algorithm])).toEqual([
      ["api", "round-robin"],
      ["web", "lease"],
    ])
  })

  // Weights 3:1 hold for every algorithm, one request at a time and with several in flight.
  it.each([
    ["round-robin", 1],
    ["round-robin", 8],
    ["lease", 1],
    ["lease", 4],
    ["metrics", 1],
    ["hybrid", 4],
    ["adaptive", 1],
    ["adaptive", 4],
  ])("%s with %i in flight: weights 3:1 give 75 %% ± 2 points over 10,000 requests", async (algorithm, concurrency) => {
    const { lb } = await start(`
routes:
  - name: weighted
    rule: PathPrefix(\`/\`)
    algorithm: ${algorithm}
    replicas:
      - { url: ${origin(0)}, weight: 3 }
      - { url: ${origin(1)}, weight: 1 }
`)
    const { shares, failures } = await drive(lb.url, { requests: 10_000, concurrency: concurrency as number })
    expect(failures).toEqual([])
    const heavy = (shares["replica-1"] ?? 0) / 10_000
    expect(Math.abs(heavy - 0.75), `replica-1 took ${heavy}`).toBeLessThanOrEqual(0.02)
  })

  it("weight 0 drains a replica: it gets nothing new", async () => {
    const { lb } = await start(`
routes:
  - name: drained
    rule: PathPrefix(\`/\`)
    replicas:
      - { url: ${origin(0)}, weight: 0 }
      - ${origin(1)}
`)
    const { shares, failures } = await drive(lb.url, { requests: 200, concurrency: 4 })
    expect(failures).toEqual([])
    expect(shares).toEqual({ "replica-2": 200 })
  })

  it("applies an edit of the file under load without failing a request", async () => {
    const { lb, file } = await start(`
routes:
  - name: web
    rule: PathPrefix(\`/\`)
    replicas: [${origin(0)}, ${origin(1)}]
`)
    let done = false
    const load = drive(lb.url, { requests: 1_000_000, concurrency: 8, until: () => done })
    try {
      await until("traffic on the first routes", async () => (await metricsView(lb.url)).total_requests > 500)
      // The same route to other replicas, with another algorithm: a new cluster takes over.
      file.write(`
routes:
  - name: web
    rule: PathPrefix(\`/\`)
    algorithm: adaptive
    replicas: [${origin(2)}, ${origin(3)}]
`)
      await until("the edit in force", async () => (await routesView(lb.url)).reloads.applied === 1)
      const before = (await metricsView(lb.url)).total_requests
      await until(
        "traffic on the new routes",
        async () => (await metricsView(lb.url)).total_requests > before + 500,
      )
      // Then only the replica list changes: the cluster stays, with its state.
      file.write(`
routes:
  - name: web
    rule: PathPrefix(\`/\`)
    algorithm: adaptive
    replicas: [${origin(2)}, ${origin(3)}, ${origin(0)}]
`)
      await until("the second edit in force", async () => (await routesView(lb.url)).reloads.applied === 2)
      const after = (await metricsView(lb.url)).total_requests
      await until("more traffic", async () => (await metricsView(lb.url)).total_requests > after + 500)
    } finally {
      done = true
    }
    const { shares, failures } = await load
    expect(failures).toEqual([])
    expect(Object.keys(shares).sort()).toEqual(["replica-1", "replica-2", "replica-3", "replica-4"])
    const rows = await replicasView(lb.url)
    expect(rows.map((row) => row.origin).sort()).toEqual([origin(0), origin(2), origin(3)].sort())
    // The replicas that stayed kept their endpoints: what they were sent before the second edit counts.
    const kept = rows.find((row) => row.origin === origin(2))!
    expect(kept.picks).toBeGreaterThan(shares["replica-3"]! / 2)
  })

  it("refuses a bad edit, keeps the last good routes, and takes the next good one", async () => {
    const good = `
routes:
  - name: web
    rule: PathPrefix(\`/\`)
    replicas: [${origin(0)}]
`
    const { lb, file } = await start(good)
    file.write(good.replace("PathPrefix(`/`)", "PathPrefix(`/`"))
    await until("the bad edit refused", async () => (await routesView(lb.url)).reloads.refused === 1)
    const refused = await routesView(lb.url)
    expect(refused.reloads.last_error).toMatch(/route web, rule: .*column/)
    expect(refused.routes.map((route) => route.rule)).toEqual(["PathPrefix(`/`)"])
    expect((await get(lb.url, "/still", "any.local")).body.replica).toBe("replica-1")

    file.write(good.replace(origin(0), origin(1)))
    await until("the good edit in force", async () => (await routesView(lb.url)).reloads.applied === 1)
    await until(
      "the new replica answering",
      async () => (await get(lb.url, "/", "x")).body.replica === "replica-2",
    )
  })

  it("cookie affinity: 1,000 requests stay on one replica, and move within one request when it dies", async () => {
    const { lb } = await start(`
routes:
  - name: shop
    rule: PathPrefix(\`/\`)
    algorithm: round-robin
    affinity: cookie
    replicas: [${origin(0)}, ${origin(1)}, ${origin(2)}]
`)
    const first = await request(`${lb.url}/cart`)
    const setCookie = String(first.headers["set-cookie"])
    expect(setCookie).toMatch(/^sg_shop=[0-9a-f]{16}; Path=\/; HttpOnly; SameSite=Lax$/)
    const cookie = setCookie.split(";")[0]!
    const pinned = json<Echo>(first).replica
    const { shares, failures } = await drive(lb.url, { requests: 1_000, concurrency: 4, headers: { cookie } })
    expect(failures).toEqual([])
    expect(shares).toEqual({ [pinned]: 1_000 })

    const replica = set.replicas.find((candidate) => candidate.name === pinned)!
    await replica.stop()
    onTestFinished(() => replica.restart())
    // The very next request is answered elsewhere, and the cookie is renewed for where it went.
    const moved = await request(`${lb.url}/cart`, { headers: { cookie } })
    expect(moved.status).toBe(200)
    const movedTo = json<Echo>(moved).replica
    expect(movedTo).not.toBe(pinned)
    const renewed = String(moved.headers["set-cookie"]).split(";")[0]!
    expect(renewed).not.toBe(cookie)
    const after = await drive(lb.url, { requests: 200, concurrency: 4, headers: { cookie: renewed } })
    expect(after.failures).toEqual([])
    expect(after.shares).toEqual({ [movedTo]: 200 })
  })

  it("hash affinity: each key stays on one replica, and the keys spread over the replicas", async () => {
    const { lb } = await start(`
routes:
  - name: users
    rule: PathPrefix(\`/\`)
    affinity: hash:X-User
    replicas: [${origin(0)}, ${origin(1)}, ${origin(2)}]
`)
    const owners = new Map<string, Set<string>>()
    for (let round = 0; round < 5; round++) {
      for (let user = 0; user < 30; user++) {
        const reply = await request(`${lb.url}/profile`, { headers: { "x-user": `user-${user}` } })
        expect(reply.status).toBe(200)
        expect(reply.headers["set-cookie"]).toBeUndefined()
        const seen = owners.get(`user-${user}`) ?? new Set()
        seen.add(json<Echo>(reply).replica)
        owners.set(`user-${user}`, seen)
      }
    }
    for (const [user, seen] of owners) expect(seen.size, user).toBe(1)
    const used = new Set([...owners.values()].flatMap((seen) => [...seen]))
    expect(used.size).toBe(3)
  })
})
