// The client side's clocks: a request body slower than CLIENT_REQUEST_TIMEOUT gets 408, an idle connection is closed after CLIENT_KEEPALIVE_TIMEOUT.
import { connect, type Socket } from "node:net"
import { describe, expect, it, onTestFinished } from "vitest"
import { rawExchange } from "../faults/support/raw.ts"
import { startBalancer } from "../support/balancer.ts"
import { startCluster } from "../support/cluster.ts"
import { request } from "../support/http.ts"
import { startReplicas } from "../support/replicas.ts"
import { waitForNoLeases } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

/** A request head announcing a 100-byte body, and the first 10 bytes of it: the rest never comes. */
const STALLED_UPLOAD = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"

/** How many whole responses (Content-Length framed, latin1 text) `text` holds. */
const responsesIn = (text: string): number => {
  let count = 0
  let rest = text
  for (;;) {
    const head = rest.indexOf("\r\n\r\n")
    if (head === -1) return count
    const length = Number(/^content-length: *(\d+)/im.exec(rest.slice(0, head))?.[1] ?? 0)
    if (rest.length < head + 4 + length) return count
    count++
    rest = rest.slice(head + 4 + length)
  }
}

/** A raw keep-alive client connection: nothing on this side ever closes it before the test ends. */
interface RawClient {
  readonly socket: Socket
  readonly responses: () => number
  readonly closed: () => boolean
  readonly get: (path: string) => Promise<void>
}

const rawClient = async (port: number): Promise<RawClient> => {
  const socket = connect({ host: "127.0.0.1", port })
  onTestFinished(() => {
    socket.destroy()
  })
  let received = ""
  let closed = false
  socket.setEncoding("latin1")
  socket.on("data", (text: string) => {
    received += text
  })
  socket.on("error", () => {})
  socket.on("close", () => {
    closed = true
  })
  await new Promise((resolve) => socket.once("connect", resolve))
  const responses = () => responsesIn(received)
  const get = async (path: string) => {
    const before = responses()
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
    await waitFor(`the answer to GET ${path}`, () => (responses() > before ? true : undefined))
  }
  return { socket, responses, closed: () => closed, get }
}

describe("client timeouts", () => {
  it("CLIENT_REQUEST_TIMEOUT: a request body that stops coming gets 408, and its upstream request is dropped", async () => {
    // Node refuses a head deadline longer than the whole request's, so both are set.
    const { set, lb } = await startCluster({ CLIENT_HEADER_TIMEOUT: "0.5", CLIENT_REQUEST_TIMEOUT: "1" })

    const answer = await rawExchange(lb.port, [STALLED_UPLOAD], { timeoutMs: 15_000 })

    expect(answer.received).toMatch(/^HTTP\/1\.1 408 /)
    expect(answer.closedByPeer).toBe(true)
    // The head had been forwarded: the replica saw the upload begin, then abandoned.
    expect(set.replicas.reduce((sum, replica) => sum + replica.hits("/upload"), 0)).toBe(1)
    await waitFor("the replica to see the upload abandoned", () =>
      set.replicas.some((replica) => replica.aborted() === 1) ? true : undefined,
    )
    await waitForNoLeases(lb.url)
    expect((await request(`${lb.url}/whoami`)).status).toBe(200)
  })

  // Node's server refuses a head timeout longer than the request timeout: the balancer must take the
  // shorter one for both rather than stop at start, since the README sets no such bound.
  it("CLIENT_REQUEST_TIMEOUT alone, shorter than the default CLIENT_HEADER_TIMEOUT, is accepted", async () => {
    const { lb } = await startCluster({ CLIENT_REQUEST_TIMEOUT: "1" })
    const answer = await rawExchange(lb.port, [STALLED_UPLOAD], { timeoutMs: 15_000 })
    expect(answer.received).toMatch(/^HTTP\/1\.1 408 /)
  })

  it("CLIENT_KEEPALIVE_TIMEOUT: an idle client connection is closed by the balancer", async () => {
    const set = await startReplicas(1)
    onTestFinished(() => set.stopAll())
    const short = await startBalancer({ REPLICAS: set.origins, CLIENT_KEEPALIVE_TIMEOUT: "0.3" })
    onTestFinished(() => short.close())
    const long = await startBalancer({ REPLICAS: set.origins, CLIENT_KEEPALIVE_TIMEOUT: "60" })
    onTestFinished(() => long.close())
    const shortClient = await rawClient(short.port)
    const longClient = await rawClient(long.port)

    await longClient.get("/whoami")
    await shortClient.get("/whoami")
    await waitFor("the balancer to close the idle connection", () =>
      shortClient.closed() ? true : undefined,
    )

    // As idle for as long, under a longer setting: still open, and still serving.
    expect(longClient.closed()).toBe(false)
    await longClient.get("/whoami")
    expect(longClient.responses()).toBe(2)
    expect(shortClient.responses()).toBe(1)
  })
})
