// /compute/cpu's fixed CPU cost, the sinkhole fault and the load reports, over real sockets.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { parseLoadReport } from "../../src/domain/LoadReport.ts"
import { runWorkloadToExit, startWorkload, type Workload } from "./app.ts"

let app: Workload

beforeAll(async () => {
  app = await startWorkload("127.0.0.35")
})

afterAll(async () => {
  await app?.stop()
})

const get = (path: string, target: Workload = app) =>
  fetch(`${target.url}${path}`, { signal: AbortSignal.timeout(10_000) })

/** The load report on an answer, as the balancer reads it; undefined when there is none. */
const reportOn = async (path: string, target: Workload = app) => {
  const response = await get(path, target)
  await response.arrayBuffer()
  const header = response.headers.get("endpoint-load-metrics")
  return header === null ? undefined : parseLoadReport(header)
}

describe("/compute/cpu", () => {
  it("spends at least the CPU time asked, and no less wall time", async () => {
    const { status, body } = await app.json("/compute/cpu?ms=30")
    expect(status).toBe(200)
    expect(body).toMatchObject({ ms: 30, work_factor: 1, hostname: expect.any(String) })
    expect(body.cpu_ms).toBeGreaterThanOrEqual(30)
    expect(body.wall_ms).toBeGreaterThanOrEqual(30)
    // Decimals too.
    expect((await app.json("/compute/cpu?ms=0.5")).body.cpu_ms).toBeGreaterThanOrEqual(0.5)
  })

  it.each([
    "/compute/cpu",
    "/compute/cpu?ms=0",
    "/compute/cpu?ms=10001",
    "/compute/cpu?ms=abc",
  ])("%s answers 400 naming ms", async (path) => {
    const { status, body } = await app.json(path)
    expect(status).toBe(400)
    expect(body.param).toBe("ms")
  })

  it("costs WORK_FACTOR times the time asked", async () => {
    const slow = await startWorkload("127.0.0.36", { WORK_FACTOR: "2.5" })
    onTestFinished(async () => {
      await slow.stop()
    })
    const { body } = await slow.json("/compute/cpu?ms=4")
    expect(body).toMatchObject({ ms: 4, work_factor: 2.5 })
    expect(body.cpu_ms).toBeGreaterThanOrEqual(10)
  })
})

describe("the sinkhole fault", () => {
  it("answers the asked share of /compute/* with an immediate 500, counted, until stopped", async () => {
    const set = await app.json("/fault/errors?share=1")
    expect(set).toMatchObject({ status: 200, body: { faults: { error_share: 1 } } })
    const before = (await app.json("/metrics")).body.requests.failed_injected
    for (const path of ["/compute/cpu?ms=1", "/compute/pi?iterations=10"]) {
      const response = await get(path)
      expect(response.status).toBe(500)
      expect(((await response.json()) as { error: string }).error).toContain("injected")
      // Failed or not, the answer reports the load.
      expect(response.headers.get("endpoint-load-metrics")).toContain("named_metrics.rif=")
    }
    // Only /compute/*: health and downloads still answer.
    expect((await app.json("/health")).status).toBe(200)
    expect((await get("/download/data?size_mb=0")).status).toBe(200)
    expect((await app.json("/fault/status")).body).toMatchObject({ error_share: 1 })
    expect((await app.json("/metrics")).body.requests.failed_injected).toBe(before + 2)

    await app.json("/fault/errors?share=0")
    expect((await app.json("/compute/cpu?ms=1")).status).toBe(200)
    await app.json("/fault/errors?share=1")
    expect((await app.json("/fault/stop")).body.faults.error_share).toBe(0)
    expect((await app.json("/compute/pi?iterations=10")).status).toBe(200)
  })

  it.each([
    "/fault/errors",
    "/fault/errors?share=1.5",
    "/fault/errors?share=-0.1",
  ])("%s answers 400 naming share", async (path) => {
    const { status, body } = await app.json(path)
    expect(status).toBe(400)
    expect(body.param).toBe("share")
  })
})

describe("load reports", () => {
  it("come on /compute/*, /download/* and /health, and not on the control endpoints", async () => {
    for (const path of [
      "/compute/cpu?ms=1",
      "/compute/pi?iterations=10",
      "/download/data?size_mb=0",
      "/health",
    ]) {
      const report = await reportOn(path)
      expect(report, path).toBeDefined()
      expect(report!.named.rif, path).toBeGreaterThanOrEqual(1)
    }
    // A 400 from a load-reporting endpoint still reports.
    expect(await reportOn("/compute/cpu?ms=x")).toBeDefined()
    for (const path of ["/metrics", "/stress/status", "/fault/status", "/load-reports"]) {
      expect(await reportOn(path), path).toBeUndefined()
    }
  })

  it("count in rif every request held, the answering one included", async () => {
    // A download whose body is not read stays in flight: its response waits on the client.
    const held = new AbortController()
    const download = await fetch(`${app.url}/download/data?size_mb=64`, { signal: held.signal })
    onTestFinished(() => held.abort())
    expect(parseLoadReport(download.headers.get("endpoint-load-metrics")!)!.named.rif).toBe(1)
    expect((await reportOn("/health"))!.named.rif).toBe(2)
  })

  it("report CPU use as a share of the allowance the replica reads", async () => {
    await app.json("/compute/cpu?ms=50")
    const { body } = await app.json("/load-reports")
    expect(body).toMatchObject({ enabled: true, cpu_allowance_source: expect.any(String) })
    expect(body.cpu_allowance_cores).toBeGreaterThan(0)
    expect(body.cpu_utilization).toBeGreaterThanOrEqual(0)
  })

  it("are switched off and on at run time", async () => {
    onTestFinished(async () => {
      await app.json("/load-reports?enabled=true")
    })
    expect((await app.json("/load-reports?enabled=false")).body.enabled).toBe(false)
    expect(await reportOn("/compute/cpu?ms=1")).toBeUndefined()
    expect((await app.json("/load-reports?enabled=true")).body.enabled).toBe(true)
    expect(await reportOn("/compute/cpu?ms=1")).toBeDefined()
    const bad = await app.json("/load-reports?enabled=yes")
    expect(bad.status).toBe(400)
    expect(bad.body.param).toBe("enabled")
  })
})

describe("start-up settings", () => {
  it("LOAD_REPORTS=off and ERROR_SHARE=1 apply from the start", async () => {
    const faulty = await startWorkload("127.0.0.37", { LOAD_REPORTS: "off", ERROR_SHARE: "1" })
    onTestFinished(async () => {
      await faulty.stop()
    })
    expect((await get("/compute/cpu?ms=1", faulty)).status).toBe(500)
    expect(await reportOn("/health", faulty)).toBeUndefined()
    expect((await faulty.json("/load-reports")).body.enabled).toBe(false)
    expect((await faulty.json("/fault/status")).body.error_share).toBe(1)
  })

  it.concurrent.each([
    ["ERROR_SHARE", "2"],
    ["ERROR_SHARE", "half"],
    ["LOAD_REPORTS", "maybe"],
  ])("%s=%s stops it with one line and exit code 1", async (variable, value) => {
    const exit = await runWorkloadToExit({ HOST: "127.0.0.37", [variable]: value })
    expect(exit.code).toBe(1)
    const lines = exit.stderr.split("\n").filter((line) => line !== "")
    expect(lines, exit.stderr).toHaveLength(1)
    expect(lines[0]).toContain(`${variable}=${JSON.stringify(value)}`)
  })
})
