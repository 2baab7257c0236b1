// UPSTREAM_CONNECT_TIMEOUT against a replica whose handshake never completes, UPSTREAM_IDLE_TIMEOUT against a body that stalls.
import { request as httpRequest } from "node:http"
import { describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { type Blackhole, startBlackhole } from "../support/blackhole.ts"
import { startReplicas } from "../support/replicas.ts"
import { metricsView, sharesOf, waitForHealth, waitForNoLeases } from "../support/views.ts"
import { waitFor, within } from "../support/wait.ts"

/** Above the balancer's longest wait here, so a test never gives up before the balancer does. */
const CLIENT_BOUND_MS = 15_000

interface Ending {
  readonly status: number
  readonly body: Buffer
  /** Whether the response was read to its end (false: it was cut before). */
  readonly complete: boolean
}

interface Watched {
  /** Settles once the response has ended, whichever end it was. */
  readonly ended: Promise<Ending>
  readonly settled: () => boolean
  /** Destroys the client's connection. */
  readonly abort: () => void
}

/** GETs `url` and follows its response to the end, whichever end it is. */
const watch = (url: string): Watched => {
  let settled = false
  const req = httpRequest(url, { agent: false })
  const ended = new Promise<Ending>((resolve, reject) => {
    req.on("error", reject)
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      // `end` comes only for a complete response; `close` without it is a cut.
      const settle = () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: res.complete })
      res.on("end", settle)
      res.on("close", settle)
      res.on("error", () => {})
    })
  }).finally(() => {
    settled = true
  })
  ended.catch(() => {})
  req.end()
  onTestFinished(() => {
    req.destroy()
  })
  return { ended, settled: () => settled, abort: () => req.destroy() }
}

const startHole = async (host: string): Promise<Blackhole> => {
  const hole = await startBlackhole(host)
  onTestFinished(() => hole.stop())
  return hole
}

const balancerOver = async (env: Record<string, string>) => {
  const lb = await startBalancer(env)
  onTestFinished(() => lb.close())
  return lb
}

describe("UPSTREAM_CONNECT_TIMEOUT", () => {
  it("a replica that never completes the handshake: 504 JSON once the connect timeout passes", async () => {
    const hole = await startHole("127.0.0.250")
    // Probes would otherwise mark it down on their own meanwhile; here only the proxy's attempt counts.
    const env = { REPLICAS: hole.origin, HEALTH_CHECK_INTERVAL: "3600" }
    const short = await balancerOver({ ...env, UPSTREAM_CONNECT_TIMEOUT: "0.3" })
    const long = await balancerOver({ ...env, UPSTREAM_CONNECT_TIMEOUT: "5" })

    // The longer setting starts first: were the setting ignored, it would answer first.
    const waitingLong = watch(`${long.url}/whoami`)
    await waitFor("the first balancer to be connecting", async () =>
      (await metricsView(long.url)).leases.active === 1 ? true : undefined,
    )
    const waitingShort = watch(`${short.url}/whoami`)
    const answer = await within("the short connect timeout's answer", CLIENT_BOUND_MS, waitingShort.ended)

    expect(answer).toMatchObject({ status: 504, complete: true })
    expect(JSON.parse(answer.body.toString("utf8"))).toMatchObject({ error: "upstream_timeout" })
    expect(waitingLong.settled()).toBe(false)
    expect((await metricsView(short.url)).failures.upstream_timeout).toBe(1)
    // The longer setting gives up too, in its own time.
    const later = await within("the long connect timeout's answer", CLIENT_BOUND_MS, waitingLong.ended)
    expect(later).toMatchObject({ status: 504, complete: true })
  })

  it("a GET whose replica never completes the handshake is retried elsewhere; the replica is marked down", async () => {
    const hole = await startHole("127.0.0.250")
    const set = await startReplicas(1)
    onTestFinished(() => set.stopAll())
    const lb = await balancerOver({
      REPLICAS: `${hole.origin},${set.origins}`,
      LB_ALGORITHM: "round-robin",
      UPSTREAM_CONNECT_TIMEOUT: "0.3",
      HEALTH_CHECK_INTERVAL: "3600",
    })
    const [replica] = set.replicas

    // Every other request is first sent to the unreachable one, until the third failure in a row
    // (UNHEALTHY_THRESHOLD, probes' included) takes it out; every client gets its 200 from the other.
    const shares = await sharesOf(lb.url, 12)

    expect(shares).toEqual({ [replica!.name]: 12 })
    await waitForHealth(lb.url, `${hole.host}:${hole.port}`, false)
    const metrics = await metricsView(lb.url)
    // Retried until marked down; the probe at start may have counted one of the three failures.
    expect(metrics.retries).toBeGreaterThanOrEqual(2)
    expect(metrics.retries).toBeLessThanOrEqual(3)
    expect(metrics.failures.upstream_timeout ?? 0).toBe(0)
  })
})

describe("UPSTREAM_IDLE_TIMEOUT", () => {
  it("a body that stalls mid-stream: the client sees the response cut, not completed", async () => {
    const set = await startReplicas(1)
    onTestFinished(() => set.stopAll())
    const [replica] = set.replicas
    const short = await balancerOver({ REPLICAS: set.origins, UPSTREAM_IDLE_TIMEOUT: "0.3" })
    const long = await balancerOver({ REPLICAS: set.origins, UPSTREAM_IDLE_TIMEOUT: "60" })
    const half = 64 * 1024

    // The longer setting starts first: were the setting ignored, it would be cut first.
    const stalledLong = watch(`${long.url}/stall?bytes=${half}`)
    await waitFor("the first stalled response to reach the replica", () =>
      replica!.hits("/stall") === 1 ? true : undefined,
    )
    const stalledShort = watch(`${short.url}/stall?bytes=${half}`)
    const cut = await within("the stalled response to end", CLIENT_BOUND_MS, stalledShort.ended)

    // The status and the first half arrived; the body's declared second half never did.
    expect(cut).toMatchObject({ status: 200, complete: false })
    expect(cut.body.length).toBe(half)
    expect(stalledLong.settled()).toBe(false)
    const { metrics } = await waitForNoLeases(short.url)
    expect(metrics.failures.upstream_timeout).toBe(1)
    // The balancer gave up on the replica's response too, not only on the client's.
    await waitFor("the replica to see its stalled response abandoned", () =>
      replica!.aborted() >= 1 ? true : undefined,
    )

    stalledLong.abort()
    await waitForNoLeases(long.url)
  })
})
