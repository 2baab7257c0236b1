// Header handling across the proxy: hop-by-hop headers stay on their hop, X-Forwarded-* are added.
import { describe, expect, it, onTestFinished } from "vitest"
import { useCluster } from "../support/cluster.ts"
import { hold, json, request } from "../support/http.ts"
import { within } from "../support/wait.ts"

interface Echo {
  readonly replica: string
  readonly headers: Record<string, string | undefined>
}

describe("headers", () => {
  const cluster = useCluster({ LB_ALGORITHM: "round-robin" })

  it("drops hop-by-hop request headers and adds X-Forwarded-*", async () => {
    const reply = await request(`${cluster.lb.url}/echo`, {
      headers: {
        connection: "x-custom",
        "x-custom": "for this hop only",
        "keep-alive": "timeout=5",
        te: "trailers",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        "x-end-to-end": "kept",
      },
    })
    expect(reply.status).toBe(200)
    const { headers } = json<Echo>(reply)
    expect(headers["x-custom"]).toBeUndefined()
    expect(headers["keep-alive"]).toBeUndefined()
    expect(headers.te).toBeUndefined()
    expect(headers["proxy-authorization"]).toBeUndefined()
    // The upstream connection has its own Connection header; the client's listed names are not in it.
    expect(headers.connection ?? "").not.toContain("x-custom")
    expect(headers["x-end-to-end"]).toBe("kept")
    expect(headers["x-forwarded-for"]).toBe("127.0.0.1")
    expect(headers["x-forwarded-proto"]).toBe("http")
    expect(headers["x-forwarded-host"]).toBe(`127.0.0.1:${cluster.lb.port}`)
    expect(headers.host).toBe(`127.0.0.1:${cluster.lb.port}`)
  })

  it("appends the client to an incoming X-Forwarded-For and keeps given X-Forwarded-Proto/-Host", async () => {
    const reply = await request(`${cluster.lb.url}/echo`, {
      headers: {
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "shop.example",
      },
    })
    const { headers } = json<Echo>(reply)
    expect(headers["x-forwarded-for"]).toBe("203.0.113.7, 127.0.0.1")
    expect(headers["x-forwarded-proto"]).toBe("https")
    expect(headers["x-forwarded-host"]).toBe("shop.example")
  })

  it("drops hop-by-hop response headers", async () => {
    const reply = await request(`${cluster.lb.url}/hop-by-hop`)
    expect(reply.status).toBe(200)
    expect(reply.headers["x-replica-hop"]).toBeUndefined()
    expect(reply.headers["keep-alive"]).toBeUndefined()
    expect(reply.headers["proxy-authenticate"]).toBeUndefined()
    expect(reply.headers.connection ?? "").not.toContain("x-replica-hop")
    expect(reply.headers["x-end-to-end"]).toBe("kept")
    expect(reply.headers["x-replica"]).toMatch(/^replica-\d$/)
  })

  it("passes response headers on as soon as the replica sends them, before any body byte", async () => {
    // The replica flushes its headers at once and its body only after 20 s (a long poll, an event
    // stream): a streaming proxy must not hold the status and headers back until the first byte.
    const direct = hold(`${cluster.set.replicas[0]!.origin}/slow?ms=20000`)
    onTestFinished(direct.abort)
    await within("the replica's own headers", 5_000, direct.response)
    const proxied = hold(`${cluster.lb.url}/slow?ms=20000`)
    onTestFinished(proxied.abort)
    const response = await within("the headers through the balancer", 5_000, proxied.response)
    expect(response.status).toBe(200)
    expect(response.replica).toMatch(/^replica-\d$/)
  })
})
