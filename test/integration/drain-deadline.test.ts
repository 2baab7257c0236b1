// The drain's deadline against a request still connecting to a replica that never answers the handshake: shutdown must not wait for the connect timeout.
import { describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { startBlackhole } from "../support/blackhole.ts"
import { request } from "../support/http.ts"
import { metricsView } from "../support/views.ts"
import { waitFor, within } from "../support/wait.ts"

describe("drain deadline", () => {
  // A graceful close of the upstream pools would wait for a connection attempt in progress, so that
  // shutdown would end only when UPSTREAM_CONNECT_TIMEOUT expires, not at DRAIN_TIMEOUT's deadline.
  it("a request still connecting when the deadline passes is cut, and the balancer closes", async () => {
    const hole = await startBlackhole("127.0.0.250")
    onTestFinished(() => hole.stop())
    const lb = await startBalancer({
      REPLICAS: hole.origin,
      HEALTH_CHECK_INTERVAL: "3600",
      UPSTREAM_CONNECT_TIMEOUT: "30",
      DRAIN_TIMEOUT: "1",
    })
    const cut = request(`${lb.url}/whoami`).then(
      () => false,
      () => true,
    )
    await waitFor("the request to hold a lease while connecting", async () =>
      (await metricsView(lb.url)).leases.active === 1 ? true : undefined,
    )

    // A one-second drain, with 29 s of connect timeout left: closing must end near the deadline.
    const closing = lb.close()
    const closedInTime = await within("the balancer to close", 10_000, closing).then(
      () => true,
      () => false,
    )
    // Otherwise, let the attempt fail (the listener goes) so the balancer can finish closing.
    if (!closedInTime) await hole.stop().then(() => closing)

    expect(closedInTime).toBe(true)
    expect(await cut).toBe(true)
  })
})
