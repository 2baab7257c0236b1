// The workload's request endpoints over real sockets: health, pi, downloads, parameter checks, metrics, start-up.

import type { AddressInfo } from "node:net"
import { createServer } from "node:net"
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { runWorkloadToExit, startWorkload, type Workload } from "./app.ts"

let app: Workload

beforeAll(async () => {
  app = await startWorkload("127.0.0.31")
})

afterAll(async () => {
  await app?.stop()
})

describe("web-stress requests", () => {
  it("GET /health answers healthy with its uptime", async () => {
    const { status, body } = await app.json("/health")
    expect(status).toBe(200)
    expect(body.status).toBe("healthy")
    expect(body.uptime).toBeGreaterThan(0)
  })

  it("/compute/pi estimates pi and echoes the iterations", async () => {
    const { status, body } = await app.json("/compute/pi?iterations=400000")
    expect(status).toBe(200)
    expect(body).toMatchObject({ iterations: 400000, work_factor: 1, effective_iterations: 400000 })
    // Standard error at 400k points is about 0.0026: 0.02 is more than seven of them.
    expect(Math.abs(body.pi - Math.PI)).toBeLessThan(0.02)
  })

  it.each([
    ["3", 3 * 1024 * 1024],
    ["0.5", 512 * 1024],
    ["0", 0],
  ])("/download/data?size_mb=%s streams exactly that many MiB", async (size, bytes) => {
    const response = await fetch(`${app.url}/download/data?size_mb=${size}&cpu_work=1000`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-length")).toBe(String(bytes))
    expect((await response.arrayBuffer()).byteLength).toBe(bytes)
  })

  it.each([
    ["/compute/pi?iterations=abc", "iterations"],
    ["/compute/pi?iterations=0", "iterations"],
    ["/compute/pi?iterations=1.5", "iterations"],
    ["/compute/pi?iterations=", "iterations"],
    ["/download/data?size_mb=-1", "size_mb"],
    ["/download/data?size_mb=1&cpu_work=x", "cpu_work"],
    ["/stress/cpu", "target"],
    ["/stress/cpu?target=0", "target"],
    ["/stress/cpu?target=50&duration=0", "duration"],
    ["/stress/cpu?target=50&duration=5&ramp=10", "ramp"],
    ["/stress/memory?target=lots", "target"],
    ["/stress/network?bandwidth=1e9", "bandwidth"],
    ["/stress/combined?memory=-3", "memory"],
    ["/stress/incremental?duration=5", "cpu"],
  ])("%s answers 400 naming %s", async (path, param) => {
    const { status, body } = await app.json(path)
    expect(status).toBe(400)
    expect(body.param).toBe(param)
    expect(body.error).toContain(param)
    // Nothing was started by a refused request.
    expect((await app.json("/stress/status")).body.active).toBe(false)
  })

  it("an unknown path answers 404 JSON, an unsupported method 405", async () => {
    const missing = await app.json("/nope")
    expect(missing.status).toBe(404)
    expect(missing.body.error).toContain("/nope")
    const response = await fetch(`${app.url}/health`, { method: "DELETE" })
    expect(response.status).toBe(405)
    expect(((await response.json()) as { error: string }).error).toContain("DELETE")
  })

  it("/metrics counts requests and reports the process's CPU and memory", async () => {
    const before = (await app.json("/metrics")).body
    await app.json("/health")
    await app.json("/health")
    const { status, body } = await app.json("/metrics")
    expect(status).toBe(200)
    expect(body.requests.total).toBe(before.requests.total + 3)
    expect(body.requests.by_route["/health"]).toBe((before.requests.by_route["/health"] ?? 0) + 2)
    expect(body.process.memory_rss_mb).toBeGreaterThan(10)
    expect(body.process.cpu_user_s).toBeGreaterThan(0)
    expect(body.uptime).toBeGreaterThan(0)
    expect(body.stress.active).toBe(false)
  })
})

describe("web-stress start-up", () => {
  it("WORK_FACTOR multiplies the work of /compute/pi", async () => {
    const slow = await startWorkload("127.0.0.32", { WORK_FACTOR: "2.5" })
    onTestFinished(async () => {
      await slow.stop()
    })
    const { body } = await slow.json("/compute/pi?iterations=1000")
    expect(body).toMatchObject({ iterations: 1000, work_factor: 2.5, effective_iterations: 2500 })
  })

  it.concurrent.each([
    ["WORK_FACTOR", "abc"],
    ["PORT", "70000"],
    ["NETWORK_STRESS_TARGET", "nowhere"],
  ])("%s=%s stops it with one line and exit code 1", async (variable, value) => {
    const exit = await runWorkloadToExit({ HOST: "127.0.0.33", [variable]: value })
    expect(exit.code).toBe(1)
    const lines = exit.stderr.split("\n").filter((line) => line !== "")
    expect(lines, exit.stderr).toHaveLength(1)
    expect(lines[0]).toContain(`${variable}=${JSON.stringify(value)}`)
    expect(exit.stdout).not.toContain("listening")
  })

  it("a port in use stops it the same way", async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.33", resolve))
    onTestFinished(() => {
      taken.close()
    })
    const { port } = taken.address() as AddressInfo
    const exit = await runWorkloadToExit({ HOST: "127.0.0.33", PORT: String(port) })
    expect(exit.code).toBe(1)
    expect(exit.stderr.trim().split("\n")).toHaveLength(1)
    expect(exit.stderr).toContain(`127.0.0.33:${port}`)
  })
})
