// HTTP/1.1 details the proxy must carry through: query strings, HEAD, chunked and 100-continue uploads, keep-alive clients.
import { Agent, request as httpRequest } from "node:http"
import { describe, expect, it, onTestFinished } from "vitest"
import { useCluster } from "../support/cluster.ts"
import { json, type Reply, request } from "../support/http.ts"
import { patternSha256, patternStream } from "../support/pattern.ts"
import { within } from "../support/wait.ts"

/** Sends a POST whose body `write` produces, and collects the answer. */
const post = (
  url: string,
  headers: Record<string, string | number>,
  write: (req: ReturnType<typeof httpRequest>) => void,
) =>
  within(
    `POST ${url}`,
    15_000,
    new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(url, { method: "POST", headers, agent: false })
      req.on("error", reject)
      req.on("response", (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        )
      })
      write(req)
    }),
  )

describe("HTTP/1.1 through the balancer", () => {
  const cluster = useCluster({ LB_ALGORITHM: "round-robin" })

  it("keeps the path and query string as sent", async () => {
    const echo = json<{ url: string; method: string }>(
      await request(`${cluster.lb.url}/echo/a%2Fb?x=1&y=two%20words&x=3`),
    )
    expect(echo).toMatchObject({ url: "/echo/a%2Fb?x=1&y=two%20words&x=3", method: "GET" })
  })

  it("answers HEAD with the replica's headers and no body", async () => {
    const reply = await request(`${cluster.lb.url}/download?bytes=12345`, { method: "HEAD" })
    expect(reply.status).toBe(200)
    expect(reply.headers["content-length"]).toBe("12345")
    expect(reply.body.length).toBe(0)
  })

  it("carries a chunked upload (no Content-Length)", async () => {
    const bytes = 3 * 1024 * 1024 + 17
    const reply = await post(`${cluster.lb.url}/upload`, {}, (req) => patternStream(bytes).pipe(req))
    expect(reply.status).toBe(200)
    expect(json(reply)).toMatchObject({ bytes, sha256: patternSha256(bytes) })
  })

  it("carries an upload that waits for 100 Continue", async () => {
    const bytes = 200_000
    const reply = await post(
      `${cluster.lb.url}/upload`,
      { expect: "100-continue", "content-length": bytes },
      (req) => req.on("continue", () => patternStream(bytes).pipe(req)),
    )
    expect(reply.status).toBe(200)
    expect(json(reply)).toMatchObject({ bytes, sha256: patternSha256(bytes) })
  })

  it("serves many requests on one keep-alive client connection, still rotating replicas", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    onTestFinished(() => agent.destroy())
    const sockets = new Set<unknown>()
    const answered: Record<string, number> = {}
    for (let i = 0; i < 30; i++) {
      const replica = await within(
        "a keep-alive request",
        15_000,
        new Promise<string>((resolve, reject) => {
          const req = httpRequest(`${cluster.lb.url}/whoami`, { agent }, (res) => {
            res.resume()
            res.on("end", () => resolve(String(res.headers["x-replica"])))
          })
          req.on("socket", (socket) => sockets.add(socket))
          req.on("error", reject)
          req.end()
        }),
      )
      answered[replica] = (answered[replica] ?? 0) + 1
    }
    expect(sockets.size).toBe(1)
    expect(Object.values(answered)).toEqual([10, 10, 10])
  })
})
