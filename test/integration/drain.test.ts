// SIGTERM drains the real process: what is in flight finishes (up to DRAIN_TIMEOUT), nothing new gets in.
import { connect as netConnect, type Socket } from "node:net"
import { setTimeout as sleep } from "node:timers/promises"
import { WebSocket } from "undici"
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { type BalancerProcess, spawnBalancer } from "../../src/process/balancer.ts"
import { startBalancer } from "../support/balancer.ts"
import { json, type Reply, request } from "../support/http.ts"
import { type ReplicaSet, startReplicas } from "../support/replicas.ts"
import { waitFor, within } from "../support/wait.ts"

type Outcome =
  | { readonly ok: true; readonly reply: Reply }
  | { readonly ok: false; readonly code: string; readonly message: string }

/** Never rejects: a request's answer, or the error it ended with. */
const attempt = (url: string, timeoutMs = 20_000): Promise<Outcome> =>
  request(url, { timeoutMs }).then(
    (reply): Outcome => ({ ok: true, reply }),
    (error: NodeJS.ErrnoException): Outcome => ({
      ok: false,
      code: error.code ?? "",
      message: error.message,
    }),
  )

const slowHits = (set: ReplicaSet) => set.replicas.reduce((sum, replica) => sum + replica.hits("/slow"), 0)

/** A raw client connection: bytes in, everything received so far out, and when it closed. */
interface Raw {
  readonly socket: Socket
  readonly received: () => string
  readonly closed: Promise<void>
}

const rawConnection = async (port: number): Promise<Raw> => {
  const socket = netConnect({ host: "127.0.0.1", port })
  let received = ""
  socket.setEncoding("latin1").on("data", (text: string) => {
    received += text
  })
  socket.on("error", () => {})
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()))
  onTestFinished(() => {
    socket.destroy()
  })
  await within(
    "a raw connection to the balancer",
    5_000,
    new Promise((resolve) => socket.once("connect", resolve)),
  )
  return { socket, received: () => received, closed }
}

const sigterm = (lb: BalancerProcess) => {
  process.kill(lb.pid, "SIGTERM")
  return Date.now()
}

const waitForLog = (lb: BalancerProcess, message: string) =>
  waitFor(
    `the balancer to log "${message}"`,
    () => (lb.stdout().includes(`message="${message}"`) ? true : undefined),
    {
      timeoutMs: 5_000,
      intervalMs: 10,
    },
  )

/** The logfmt line carrying `message`, as key=value pairs. */
const logLine = (stdout: string, message: string): Record<string, string> => {
  const line = stdout.split("\n").find((candidate) => candidate.includes(`message="${message}"`))
  if (line === undefined) throw new Error(`no "${message}" line in:\n${stdout}`)
  return Object.fromEntries(
    Array.from(line.matchAll(/(\w+)=("[^"]*"|\S+)/g), (match) => [match[1], match[2]]),
  )
}

describe("drain on SIGTERM", () => {
  let set: ReplicaSet
  beforeAll(async () => {
    set = await startReplicas(3)
  })
  afterAll(() => set?.stopAll())

  it("lets in-flight requests finish, refuses new connections, closes keep-alive ones, exits 0", async () => {
    const lb = await spawnBalancer({ REPLICAS: set.origins, LB_ALGORITHM: "lease", DRAIN_TIMEOUT: "10" })
    onTestFinished(() => lb.close())
    const hitsBefore = slowHits(set)

    // An idle keep-alive connection, and one that has sent half a request when the drain begins.
    const idle = await rawConnection(lb.port)
    idle.socket.write("GET /whoami HTTP/1.1\r\nHost: lb\r\n\r\n")
    await waitFor("the keep-alive answer", () => (idle.received().includes("replica-") ? true : undefined))
    const halfway = await rawConnection(lb.port)
    halfway.socket.write("GET /whoami HTTP/1.1\r\nHost: lb\r\n")
    // A keep-alive connection busy when the drain begins: once answered, it must not idle for
    // CLIENT_KEEPALIVE_TIMEOUT. Its answer comes seconds after the signal, so "at once" for the idle
    // connection means before it, whatever the machine's speed.
    const busy = await rawConnection(lb.port)
    busy.socket.write("GET /slow?ms=4000 HTTP/1.1\r\nHost: lb\r\n\r\n")

    // Seconds long, so they are surely still in flight when the signal comes, however slow the machine.
    const slow = Array.from({ length: 20 }, () => attempt(`${lb.url}/slow?ms=4000`))
    await waitFor("21 slow requests to reach the replicas", () =>
      slowHits(set) - hitsBefore === 21 ? true : undefined,
    )
    // A steady trickle of new connections, before and after the signal.
    let trickling = true
    const trickle: Array<{ readonly sentAt: number; readonly outcome: Promise<Outcome> }> = []
    let answeredBefore = 0
    const trickler = (async () => {
      while (trickling) {
        const outcome = attempt(`${lb.url}/whoami`, 5_000)
        void outcome.then((result) => {
          if (result.ok) answeredBefore++
        })
        trickle.push({ sentAt: Date.now(), outcome })
        await sleep(20)
      }
    })()
    await waitFor("the trickle to be answered before the signal", () =>
      answeredBefore >= 3 ? true : undefined,
    )

    sigterm(lb)
    await waitForLog(lb, "draining connections")
    // The drain has begun: the listener is closed.
    const late = await attempt(`${lb.url}/whoami`, 5_000)
    expect(late).toMatchObject({ ok: false, code: "ECONNREFUSED" })
    // The idle connection is told to go at once, while a request is still in flight; the half-sent
    // request is answered, with `Connection: close`.
    await within("the idle keep-alive connection to be closed", 10_000, idle.closed)
    expect(
      busy.received(),
      "the idle connection was closed only after a request in flight ended",
    ).not.toContain("slept_ms")
    halfway.socket.write("\r\n")
    await within("the half-sent request's connection to close after its answer", 5_000, halfway.closed)
    expect(halfway.received()).toMatch(/^HTTP\/1\.1 200 /)
    expect(halfway.received().toLowerCase()).toContain("\r\nconnection: close\r\n")
    expect(halfway.received()).toContain('"replica":"replica-')

    await within("the busy keep-alive connection to close once answered", 10_000, busy.closed)
    expect(busy.received()).toMatch(/^HTTP\/1\.1 200 /)
    expect(busy.received()).toContain('"slept_ms":4000')

    const exit = await within("the balancer to exit after draining", 10_000 + 5_000, lb.exited)
    trickling = false
    await trickler

    // It did not wait for DRAIN_TIMEOUT: its own account below says the deadline was not reached.
    expect(exit.code).toBe(0)
    for (const outcome of await Promise.all(slow)) {
      expect(outcome.ok, JSON.stringify(outcome)).toBe(true)
      if (!outcome.ok) continue
      expect(outcome.reply.status).toBe(200)
      expect(json(outcome.reply)).toMatchObject({ slept_ms: 4000 })
    }
    // The trickle got whole answers or no connection at all: never a broken response.
    const outcomes = await Promise.all(trickle.map((entry) => entry.outcome))
    for (const outcome of outcomes) {
      if (outcome.ok) {
        expect(outcome.reply.status).toBe(200)
        expect(json(outcome.reply)).toHaveProperty("replica")
      } else {
        // A connection still in the kernel's accept queue when the listener closed is reset.
        expect(["ECONNREFUSED", "ECONNRESET"], outcome.message).toContain(outcome.code)
      }
    }
    expect(outcomes.filter((outcome) => outcome.ok).length).toBeGreaterThan(0)
    expect(
      outcomes.filter((outcome) => !outcome.ok && outcome.code === "ECONNREFUSED").length,
    ).toBeGreaterThan(0)

    const started = logLine(exit.stdout, "draining connections")
    expect(Number(started.in_flight)).toBeGreaterThanOrEqual(21)
    const ended = logLine(exit.stdout, "drain finished")
    expect(ended).toMatchObject({ cut: "0", deadline_reached: "false" })
    expect(Number(ended.finished)).toBeGreaterThanOrEqual(22)
  })

  it("cuts what is left at DRAIN_TIMEOUT, WebSockets included, and still exits 0", async () => {
    const lb = await spawnBalancer({ REPLICAS: set.origins, LB_ALGORITHM: "lease", DRAIN_TIMEOUT: "1" })
    onTestFinished(() => lb.close())
    const hitsBefore = slowHits(set)
    const long = attempt(`${lb.url}/slow?ms=10000`)
    await waitFor("the long request to reach a replica", () =>
      slowHits(set) > hitsBefore ? true : undefined,
    )

    const ws = new WebSocket(`ws://127.0.0.1:${lb.port}/ws`)
    onTestFinished(() => ws.close())
    const messages: Array<string> = []
    ws.addEventListener("message", (event) => messages.push(String(event.data)))
    const wsClosed = new Promise<number>((resolve) =>
      ws.addEventListener("close", (event) => resolve(event.code)),
    )
    await within(
      "the WebSocket to open",
      5_000,
      new Promise((resolve) => ws.addEventListener("open", resolve)),
    )

    const signalledAt = sigterm(lb)
    await waitForLog(lb, "draining connections")
    // Upgraded connections keep working while the drain waits.
    ws.send("during the drain")
    await waitFor("the echo during the drain", () =>
      messages.includes("during the drain") ? true : undefined,
    )

    // A guard only: the 10 s request would hold a drain that did not cut it, and the log says it did.
    const exit = await within("the balancer to exit at its drain deadline", 20_000, lb.exited)
    const exitedAfterMs = Date.now() - signalledAt
    expect(exit.code).toBe(0)
    // Not before the deadline: a lower bound no machine's slowness can break.
    expect(exitedAfterMs).toBeGreaterThanOrEqual(900)

    const outcome = await within("the long request to settle", 5_000, long)
    expect(outcome.ok, "the request cut by the drain must not look complete").toBe(false)
    // Cut, not closed: 1006 is a connection lost without a closing handshake.
    expect(await within("the WebSocket to be cut", 5_000, wsClosed)).toBe(1006)

    const ended = logLine(exit.stdout, "drain finished")
    expect(ended).toMatchObject({ cut: "2", deadline_reached: "true" })
  })

  it("exits at once when nothing is in flight", async () => {
    // A long DRAIN_TIMEOUT: a drain that waited for anything would wait for it, and say so. How soon
    // it exits in seconds is measured in the fault suite (test/faults/sigterm.test.ts).
    const lb = await spawnBalancer({ REPLICAS: set.origins, DRAIN_TIMEOUT: "60" })
    onTestFinished(() => lb.close())
    expect((await request(`${lb.url}/whoami`)).status).toBe(200)
    sigterm(lb)
    const exit = await within("the idle balancer to exit", 30_000, lb.exited)
    expect(exit.code).toBe(0)
    expect(logLine(exit.stdout, "drain finished")).toMatchObject({
      cut: "0",
      finished: "0",
      deadline_reached: "false",
    })
  })

  it("in process: an idle balancer closes at once, idle keep-alive clients and all", async () => {
    // Waiting for the idle client would take DRAIN_TIMEOUT (60 s), past close's own limit: closing at
    // all shows it did not wait. How soon, in milliseconds, is measured in the fault suite.
    const lb = await startBalancer({ REPLICAS: set.origins, DRAIN_TIMEOUT: "60" })
    const idle = await rawConnection(lb.port)
    idle.socket.write("GET /whoami HTTP/1.1\r\nHost: lb\r\n\r\n")
    await waitFor("the keep-alive answer", () => (idle.received().includes("replica-") ? true : undefined))
    await lb.close()
    await within("the idle connection to be closed", 10_000, idle.closed)
  })
})
