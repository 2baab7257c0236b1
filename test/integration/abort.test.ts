// A client that gives up mid-response must leave no lease behind and must stop the upstream transfer too.
import { request as httpRequest } from "node:http"
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { startBalancer } from "../support/balancer.ts"
import { hold } from "../support/http.ts"
import { patternStream } from "../support/pattern.ts"
import { type ReplicaSet, startReplicas } from "../support/replicas.ts"
import { metricsView, waitForNoLeases } from "../support/views.ts"
import { waitFor, within } from "../support/wait.ts"

const LARGE = 1024 * 1024 * 1024

describe("client abort", () => {
  let set: ReplicaSet
  beforeAll(async () => {
    set = await startReplicas(3)
  })
  afterAll(() => set?.stopAll())

  it.each(["lease", "round-robin"])("%s: aborting mid-download releases the lease", async (algorithm) => {
    const lb = await startBalancer({ REPLICAS: set.origins, LB_ALGORITHM: algorithm })
    onTestFinished(() => lb.close())
    const abortedBefore = set.replicas.reduce((sum, replica) => sum + replica.aborted(), 0)

    // 1 GiB: far more than any socket buffer, so the response is surely unfinished when the client leaves.
    const download = hold(`${lb.url}/download?bytes=${LARGE}`)
    onTestFinished(download.abort)
    await within("the first chunk of the download", 10_000, download.firstChunk)
    expect((await metricsView(lb.url)).leases.active).toBe(1)

    download.abort()

    const { rows, metrics } = await waitForNoLeases(lb.url)
    expect(rows.map((row) => row.active_leases)).toEqual([0, 0, 0])
    expect(metrics.leases).toMatchObject({ active: 0, expired: 0 })
    expect(metrics.leases.acquired).toBe(metrics.leases.released)
    expect(metrics.failures.client_abort).toBe(1)
    // The balancer cut its upstream request as well: the replica saw its response abandoned.
    await waitFor("the replica to see its download abandoned", () =>
      set.replicas.reduce((sum, replica) => sum + replica.aborted(), 0) > abortedBefore ? true : undefined,
    )
  })

  it("aborting mid-upload releases the lease", async () => {
    const lb = await startBalancer({ REPLICAS: set.origins, LB_ALGORITHM: "lease" })
    onTestFinished(() => lb.close())
    const uploadsBefore = set.replicas.reduce((sum, replica) => sum + replica.hits("/upload"), 0)

    const upload = httpRequest(`${lb.url}/upload`, {
      method: "POST",
      headers: { "content-length": LARGE },
      agent: false,
    })
    // The socket is destroyed on purpose below; its error is expected.
    upload.on("error", () => {})
    onTestFinished(() => {
      upload.destroy()
    })
    patternStream(LARGE).pipe(upload)
    await waitFor("the upload to reach a replica", () =>
      set.replicas.reduce((sum, replica) => sum + replica.hits("/upload"), 0) > uploadsBefore
        ? true
        : undefined,
    )
    expect((await metricsView(lb.url)).leases.active).toBe(1)

    upload.destroy()

    const { metrics } = await waitForNoLeases(lb.url)
    expect(metrics.leases).toMatchObject({ acquired: 1, released: 1, expired: 0, active: 0 })
    expect(metrics.failures.client_abort).toBe(1)
  })
})
