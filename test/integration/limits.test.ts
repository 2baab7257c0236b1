// MAX_REQUEST_BODY: a body over the limit gets a 413 JSON, whether its length is declared or streamed.
import { Readable } from "node:stream"
import { describe, expect, it } from "vitest"
import { startCluster } from "../support/cluster.ts"
import { json, request } from "../support/http.ts"
import { metricsView, waitForNoLeases } from "../support/views.ts"

const LIMIT = 64 * 1024

/** A body sent chunked (no Content-Length), `bytes` long. */
const chunked = (bytes: number) => Readable.from([Buffer.alloc(bytes / 2, 1), Buffer.alloc(bytes / 2, 2)])

/** Each test has replicas and a balancer of its own, so no count carries over from another test. */
const limitedCluster = () => startCluster({ MAX_REQUEST_BODY: String(LIMIT) })

describe("request body limit", () => {
  it("passes bodies up to the limit, declared or chunked", async () => {
    const { lb } = await limitedCluster()
    const declared = await request(`${lb.url}/upload`, { method: "POST", body: Buffer.alloc(LIMIT) })
    expect(declared.status).toBe(200)
    expect(json<{ bytes: number }>(declared).bytes).toBe(LIMIT)
    const streamed = await request(`${lb.url}/upload`, { method: "POST", body: chunked(LIMIT) })
    expect(streamed.status).toBe(200)
    expect(json<{ bytes: number }>(streamed).bytes).toBe(LIMIT)
  })

  it("answers 413 JSON to a declared body over the limit without reaching a replica", async () => {
    const { set, lb } = await limitedCluster()
    const reply = await request(`${lb.url}/upload`, { method: "POST", body: Buffer.alloc(LIMIT + 1) })
    expect(reply.status).toBe(413)
    expect(json(reply)).toMatchObject({ error: "request_too_large" })
    expect(set.replicas.reduce((sum, replica) => sum + replica.hits("/upload"), 0)).toBe(0)
    expect((await metricsView(lb.url)).failures.request_too_large).toBe(1)
  })

  it("answers 413 JSON to a chunked body once it passes the limit, and leaves no lease", async () => {
    const { lb } = await limitedCluster()
    const reply = await request(`${lb.url}/upload`, { method: "POST", body: chunked(4 * LIMIT) })
    expect(reply.status).toBe(413)
    expect(json(reply)).toMatchObject({ error: "request_too_large" })
    await waitForNoLeases(lb.url)
    expect((await metricsView(lb.url)).failures.request_too_large).toBe(1)
    // The balancer goes on serving.
    expect((await request(`${lb.url}/whoami`)).status).toBe(200)
  })
})
