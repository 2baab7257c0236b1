// A malformed request costs only its own connection: it gets a 400 and the balancer keeps serving.
import { connect } from "node:net"
import { describe, expect, it } from "vitest"
import { useCluster } from "../support/cluster.ts"
import { request } from "../support/http.ts"
import { within } from "../support/wait.ts"

/** Writes `bytes` on a raw connection and returns everything the balancer sent back before closing it. */
const rawExchange = (port: number, bytes: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port })
    let received = ""
    socket.setEncoding("latin1")
    socket.on("data", (text: string) => {
      received += text
    })
    socket.on("error", reject)
    socket.on("close", () => resolve(received))
    socket.end(bytes)
  })

describe("malformed requests", () => {
  const cluster = useCluster()

  it.each([
    ["a garbage request line", "THIS IS NOT HTTP\r\n\r\n"],
    ["a header without a colon", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"],
    ["a bad Content-Length", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"],
  ])("answers 400 to %s and keeps serving", async (_, bytes) => {
    // A client that stays connected meanwhile must not notice.
    const bystander = request(`${cluster.lb.url}/slow?ms=300`)
    const answer = await within(
      "the answer to the malformed request",
      10_000,
      rawExchange(cluster.lb.port, bytes),
    )
    expect(answer).toMatch(/^HTTP\/1\.1 400 /)
    expect((await bystander).status).toBe(200)
    expect((await request(`${cluster.lb.url}/whoami`)).status).toBe(200)
  })
})
