// The comparison's load generator over real sockets: with two origins (two balancer processes) the
// requests alternate between them, each with the path the run gives its index.
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runOpenLoop } from "../../deploy/compare/open-loop.ts"

/** A server that answers 200 and remembers the paths it was asked for. */
const recorder = (name: string) => {
  const paths: Array<string> = []
  const server = createServer((req, res) => {
    paths.push(req.url ?? "")
    res.writeHead(req.url?.includes("fail") ? 500 : 200, { "x-served-by": name })
    res.end("ok")
  })
  return { server, paths }
}

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  )

describe("open-loop load", () => {
  const first = recorder("a")
  const second = recorder("b")
  const origins: Array<string> = []

  beforeAll(async () => {
    origins.push(await listen(first.server), await listen(second.server))
  })
  afterAll(() => {
    first.server.close()
    second.server.close()
  })

  it("alternates between origins and sends each request its own path", async () => {
    const result = await runOpenLoop({
      origins,
      pathOf: (index) => (index % 4 === 3 ? "/fail" : `/work?i=${index}`),
      rateRps: 200,
      durationS: 0.5,
      warmupS: 0.1,
      timeoutMs: 2_000,
    })
    expect(result.requests).toBe(100)
    expect(first.paths.length + second.paths.length).toBe(120)
    // Even indexes to the first origin, odd to the second.
    expect(first.paths.every((path) => path === "/fail" || Number(path.split("=")[1]) % 2 === 0)).toBe(true)
    expect(second.paths).toContain("/fail")
    expect(first.paths).not.toContain("/fail")
    expect(result.errors).toBe(25)
    expect(result.servedBy).toEqual({ a: 50, b: 25 })
  })
})
