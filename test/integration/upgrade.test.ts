// WebSocket (and any `Upgrade:`) connections are proxied whole, and hold their lease while they are open.
import { randomBytes } from "node:crypto"
import { request as httpRequest } from "node:http"
import { WebSocket } from "undici"
import { describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { startCluster, useCluster } from "../support/cluster.ts"
import { hold, type Reply, readReply } from "../support/http.ts"
import type { ReplicaSet } from "../support/replicas.ts"
import { metricsView, replicasView, waitForNoLeases } from "../support/views.ts"
import { waitFor, within } from "../support/wait.ts"

const MiB = 1024 * 1024

interface Client {
  readonly send: (data: string | Buffer) => void
  /** The next message, text as a string and binary as a Buffer. */
  readonly next: () => Promise<string | Buffer>
  /** Closes with 1000 and resolves with the close code the client saw. */
  readonly close: () => Promise<number>
}

/** Opens a WebSocket (undici's client) and queues what it receives; fails if it does not open. */
const connect = (url: string): Promise<Client> => {
  const ws = new WebSocket(url)
  ws.binaryType = "arraybuffer"
  const queue: Array<string | Buffer> = []
  const waiting: Array<(data: string | Buffer) => void> = []
  const closed = new Promise<number>((resolve) =>
    ws.addEventListener("close", (event) => resolve(event.code)),
  )
  ws.addEventListener("message", (event) => {
    const data = typeof event.data === "string" ? event.data : Buffer.from(event.data as ArrayBuffer)
    const waiter = waiting.shift()
    if (waiter) waiter(data)
    else queue.push(data)
  })
  const client: Client = {
    send: (data) => ws.send(data),
    next: () => {
      const queued = queue.shift()
      if (queued !== undefined) return Promise.resolve(queued)
      return within(`a message on ${url}`, 10_000, new Promise((resolve) => waiting.push(resolve)))
    },
    close: () => {
      ws.close(1000)
      return within(`${url} to close`, 10_000, closed)
    },
  }
  onTestFinished(() => {
    if (ws.readyState !== ws.CLOSED) ws.close()
  })
  return within(
    `a WebSocket to ${url} to open`,
    10_000,
    new Promise<Client>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(client))
      ws.addEventListener("error", (event) => reject(new Error(`WebSocket ${url} failed: ${event.message}`)))
    }),
  )
}

const wsUrl = (lb: string, path = "/ws") => `${lb.replace(/^http/, "ws")}${path}`

interface WhoAmI {
  readonly replica: string
  readonly headers: Record<string, string>
}

const whoami = async (client: Client): Promise<WhoAmI> => {
  client.send("whoami")
  return JSON.parse(String(await client.next())) as WhoAmI
}

const idOf = (set: ReplicaSet, name: string): string => {
  const replica = set.replicas.find((candidate) => candidate.name === name)
  if (replica === undefined) throw new Error(`no replica named ${name}`)
  return replica.id
}

/** An upgrade request that is expected to be answered without upgrading: its status and body. */
const refusedUpgrade = (url: string): Promise<Reply> =>
  within(
    `an answer to the upgrade request to ${url}`,
    10_000,
    new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(url, {
        agent: false,
        headers: {
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-key": randomBytes(16).toString("base64"),
          "sec-websocket-version": "13",
        },
      })
      req.on("error", reject)
      req.on("upgrade", (res, socket) => {
        socket.destroy()
        reject(new Error(`${url} upgraded (${res.statusCode}) where it should have refused`))
      })
      req.on("response", (res) => readReply(res).then(resolve, reject))
      req.end()
    }),
  )

describe("upgrade through the balancer", () => {
  const cluster = useCluster({ LB_ALGORITHM: "lease" })

  it("echoes messages, a 1 MiB one too, and holds one lease on its replica while open", async () => {
    const { lb, set } = cluster
    const client = await connect(wsUrl(lb.url))
    const { replica, headers } = await whoami(client)
    // The handshake reached the replica as a proxied request does.
    expect(headers).toMatchObject({
      upgrade: "websocket",
      "x-forwarded-for": "127.0.0.1",
      "x-forwarded-proto": "http",
      "x-forwarded-host": `127.0.0.1:${lb.port}`,
    })

    client.send("hello")
    expect(await client.next()).toBe("hello")
    const large = randomBytes(MiB)
    client.send(large)
    const echoed = await client.next()
    expect(Buffer.isBuffer(echoed) && echoed.equals(large)).toBe(true)

    const rows = await replicasView(lb.url)
    const id = idOf(set, replica)
    expect(rows.map((row) => [row.id, row.active_leases])).toEqual(
      set.replicas.map((candidate) => [candidate.id, candidate.id === id ? 1 : 0]),
    )
    const during = await metricsView(lb.url)
    expect(during.leases.active).toBe(1)
    expect(during.responses["1xx"]).toBe(1)

    expect(await client.close()).toBe(1000)
    const { metrics } = await waitForNoLeases(lb.url)
    expect(metrics.leases.acquired).toBe(metrics.leases.released)
    expect(metrics.leases.expired).toBe(0)
  })

  it("relays a replica's refusal to upgrade, then closes, leaving no lease", async () => {
    const { lb } = cluster
    const reply = await refusedUpgrade(`${lb.url}/ws?status=400`)
    expect(reply.status).toBe(400)
    expect(reply.headers.connection).toBe("close")
    expect(JSON.parse(reply.body.toString("utf8"))).toMatchObject({ status: 400 })
    await waitForNoLeases(lb.url)
  })

  it("spreads concurrent WebSockets by fewest leases", async () => {
    const { lb, set } = cluster
    const hitsBefore = set.replicas.map((replica) => replica.hits("/ws"))
    const clients: Array<Client> = []
    // One after another, so each pick sees the leases the ones before it hold.
    for (let i = 0; i < 2 * set.replicas.length; i++) clients.push(await connect(wsUrl(lb.url)))
    const rows = await replicasView(lb.url)
    expect(rows.map((row) => row.active_leases)).toEqual(set.replicas.map(() => 2))
    expect(set.replicas.map((replica, i) => replica.hits("/ws") - hitsBefore[i]!)).toEqual(
      set.replicas.map(() => 2),
    )
    // Each is a working connection to the replica that holds its lease.
    const names = await Promise.all(clients.map(async (client) => (await whoami(client)).replica))
    expect(names.sort()).toEqual(set.replicas.flatMap((replica) => [replica.name, replica.name]))

    await Promise.all(clients.map((client) => client.close()))
    await waitForNoLeases(lb.url)
  })
})

describe("upgrade failures", () => {
  it("answers 502 JSON when the replica refuses the connection, and marks it failed", async () => {
    const { lb, set } = await startCluster({ LB_ALGORITHM: "lease" }, { replicas: 1 })
    const [replica] = set.replicas
    await replica!.stop()

    const reply = await refusedUpgrade(`${lb.url}/ws`)
    expect(reply.status).toBe(502)
    expect(reply.headers["content-type"]).toBe("application/json")
    const body = JSON.parse(reply.body.toString("utf8")) as { error: string; message: string }
    expect(body.error).toBe("upstream_error")
    expect(body.message).toContain("ECONNREFUSED")

    const { rows, metrics } = await waitForNoLeases(lb.url)
    expect(metrics.leases).toMatchObject({ acquired: 1, released: 1, active: 0 })
    expect(metrics.failures.upstream_error).toBe(1)
    expect(rows[0]!.consecutive_failures).toBeGreaterThanOrEqual(1)
    expect(rows[0]!.last_error).toContain("ECONNREFUSED")
  })

  it("answers 503 JSON when no replica is known", async () => {
    // Discovery through an agent that is not there: no replica is ever known.
    const lb = await startBalancer({ WORKER_NODES: "127.0.0.1:9", AGENT_TIMEOUT: "1" })
    onTestFinished(() => lb.close())
    const reply = await refusedUpgrade(`${lb.url}/ws`)
    expect(reply.status).toBe(503)
    expect(JSON.parse(reply.body.toString("utf8"))).toMatchObject({ error: "no_replica" })
    expect((await metricsView(lb.url)).leases.acquired).toBe(0)
  })

  it("spends from the route's rate limit, and answers 429 with its headers past it", async () => {
    const { lb } = await startCluster({ RATE_LIMIT: "1/m", RATE_LIMIT_BURST: "1" })
    const open = await connect(wsUrl(lb.url))
    await open.close()
    const reply = await refusedUpgrade(`${lb.url}/ws`)
    expect(reply.status).toBe(429)
    expect(reply.headers["retry-after"]).toMatch(/^\d+$/)
    expect(reply.headers.ratelimit).toBe('"default";r=0;t=60')
    expect(JSON.parse(reply.body.toString("utf8"))).toMatchObject({ error: "rate_limited" })
  })

  it("never waits in the queue: at capacity it gets 503 queue_full", async () => {
    const { lb } = await startCluster({ REPLICA_MAX_REQUESTS: "1" }, { replicas: 1 })
    const open = await connect(wsUrl(lb.url))
    const reply = await refusedUpgrade(`${lb.url}/ws`)
    expect(reply.status).toBe(503)
    expect(reply.headers["retry-after"]).toBe("1")
    expect(JSON.parse(reply.body.toString("utf8"))).toMatchObject({ error: "queue_full" })
    await open.close()
  })

  it("keeps the lease past LEASE_DURATION while the connection lasts", async () => {
    const { set, lb } = await startCluster({ LEASE_DURATION: "1", LEASE_CLEANUP_INTERVAL: "1" })
    const idOf = (name: string) => set.replicas.find((replica) => replica.name === name)!.id
    const client = await connect(wsUrl(lb.url))
    const held = idOf((await whoami(client)).replica)
    // A witness: a plain request opened after the connection, whose lease nothing renews. Once the
    // expiry sweep has taken it, the sweep has also passed the older connection's own deadline.
    const witness = hold(`${lb.url}/slow?ms=30000`)
    onTestFinished(() => witness.abort())
    const witnessed = idOf((await witness.response).replica!)
    expect(witnessed, "the witness went to the connection's replica").not.toBe(held)
    const rows = await waitFor(
      "the witness's lease to expire",
      async () => {
        // The rows are read after the sweep is seen, so they cannot show the moment before it.
        const metrics = await metricsView(lb.url)
        if (metrics.leases.expired < 1) return undefined
        return { rows: await replicasView(lb.url), leases: metrics.leases }
      },
      { timeoutMs: 15_000 },
    )
    const active = (id: string) => rows.rows.find((row) => row.id === id)!.active_leases
    expect(rows.leases).toMatchObject({ active: 1, expired: 1 })
    expect(active(witnessed)).toBe(0)
    expect(active(held)).toBe(1)
    client.send("still there")
    expect(await client.next()).toBe("still there")

    witness.abort()
    await client.close()
    const after = await waitForNoLeases(lb.url)
    expect(after.metrics.leases.expired).toBe(1)
  })
})
