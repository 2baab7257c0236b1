/** Header rewriting: hop-by-hop headers dropped both ways (RFC 9110 §7.6.1), X-Forwarded-* added. */
import { describe, expect, it } from "@effect/vitest"
import { clientAddressOf, forwardRequestHeaders, forwardResponseHeaders } from "../../layers/proxy/headers.ts"

const pairs = (flat: ReadonlyArray<string>) => {
  const out: Array<[string, string]> = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!])
  return out
}

describe("forwardRequestHeaders", () => {
  it("drops hop-by-hop headers, including those named in Connection", () => {
    const { headers, hasBody } = forwardRequestHeaders(
      [
        "Host",
        "lb.example:8081",
        "Connection",
        "keep-alive, X-Session-Hop",
        "Keep-Alive",
        "timeout=5",
        "TE",
        "trailers",
        "Upgrade",
        "h2c",
        "Proxy-Authorization",
        "Basic eA==",
        "X-Session-Hop",
        "1",
        "Accept",
        "application/json",
      ],
      "10.0.0.7",
    )
    expect(pairs(headers)).toEqual([
      ["host", "lb.example:8081"],
      ["accept", "application/json"],
      ["x-forwarded-for", "10.0.0.7"],
      ["x-forwarded-proto", "http"],
      ["x-forwarded-host", "lb.example:8081"],
    ])
    expect(hasBody).toBe(false)
  })

  it("appends the client to an existing X-Forwarded-For and keeps a given proto and host", () => {
    const { headers } = forwardRequestHeaders(
      [
        "X-Forwarded-For",
        "203.0.113.1",
        "x-forwarded-for",
        "198.51.100.2",
        "X-Forwarded-Proto",
        "https",
        "X-Forwarded-Host",
        "shop.example",
        "Host",
        "lb",
      ],
      "10.0.0.7",
    )
    expect(pairs(headers)).toEqual([
      ["x-forwarded-proto", "https"],
      ["x-forwarded-host", "shop.example"],
      ["host", "lb"],
      ["x-forwarded-for", "203.0.113.1, 198.51.100.2, 10.0.0.7"],
    ])
  })

  it("knows when a request has a body", () => {
    expect(forwardRequestHeaders(["Content-Length", "0"], "x").hasBody).toBe(false)
    expect(forwardRequestHeaders(["Content-Length", "12"], "x").hasBody).toBe(true)
    const chunked = forwardRequestHeaders(["Transfer-Encoding", "chunked"], "x")
    expect(chunked.hasBody).toBe(true)
    expect(pairs(chunked.headers).map(([name]) => name)).not.toContain("transfer-encoding")
  })
})

describe("forwardResponseHeaders", () => {
  it("drops hop-by-hop headers from the replica's response", () => {
    const raw = [
      "Content-Type",
      "text/plain",
      "Connection",
      "close, X-Hop",
      "Transfer-Encoding",
      "chunked",
      "X-Hop",
      "1",
      "Keep-Alive",
      "timeout=5",
      "Set-Cookie",
      "a=1",
      "Set-Cookie",
      "b=2",
    ]
    expect(pairs(forwardResponseHeaders(raw.map((text) => Buffer.from(text))))).toEqual([
      ["content-type", "text/plain"],
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ])
  })
})

describe("clientAddressOf", () => {
  it("shows IPv4 clients of a dual-stack socket as IPv4", () => {
    expect(clientAddressOf("::ffff:10.1.2.3")).toBe("10.1.2.3")
    expect(clientAddressOf("::1")).toBe("::1")
    expect(clientAddressOf(undefined)).toBe("unknown")
  })
})
