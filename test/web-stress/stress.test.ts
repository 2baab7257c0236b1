/**
 * Background stress consumes the real resource: CPU time, resident memory and bytes written, as the
 * kernel counts them for the workload's process (what an agent reading /proc or cgroups would see).
 * Bounds are loose: the machine is shared, and these tests prove "it burns", not a benchmark.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { readCounters } from "../../agent/process/proc.ts"
import { waitFor } from "../support/wait.ts"
import { startWorkload, type Workload } from "./app.ts"

const MIB = 1024 * 1024

let app: Workload

beforeAll(async () => {
  app = await startWorkload("127.0.0.34")
})

afterAll(async () => {
  await app?.stop()
})

afterEach(async () => {
  await app.json("/stress/stop")
})

/** Core-seconds of CPU per second the process used over `ms`. */
const cpuRate = async (ms: number): Promise<number> => {
  const before = await readCounters(app.pid)
  const start = performance.now()
  await sleep(ms)
  const after = await readCounters(app.pid)
  return (after.cpuSeconds - before.cpuSeconds) / ((performance.now() - start) / 1000)
}

const status = async () => (await app.json("/stress/status")).body

describe("web-stress background stress", () => {
  it("/stress/cpu?target=50 burns about half a core, and stops by itself after its duration", async () => {
    const { status: code, body } = await app.json("/stress/cpu?target=50&duration=2")
    expect(code).toBe(200)
    expect(body.stress.target.cpu_percent).toBe(50)
    expect(body.stress.applied.cpu_workers).toBe(1)

    const rate = await cpuRate(1500)
    expect(rate).toBeGreaterThan(0.25 * 0.5)
    // Duty-cycled, not a spinning core.
    expect(rate).toBeLessThan(0.85)

    await waitFor("the CPU stress to end after its duration", async () =>
      (await status()).active ? undefined : true,
    )
    expect((await status()).applied.cpu_workers).toBe(0)
    expect(await cpuRate(500)).toBeLessThan(0.15)
  })

  it("/stress/memory holds the target in resident memory, and gives it back when stopped", async () => {
    const before = (await readCounters(app.pid)).rssBytes
    const { status: code } = await app.json("/stress/memory?target=200&duration=20")
    expect(code).toBe(200)
    await waitFor("200 MiB to be held", async () =>
      (await status()).applied.memory_mb === 200 ? true : undefined,
    )
    const grown = (await readCounters(app.pid)).rssBytes - before
    expect(grown).toBeGreaterThan(0.8 * 200 * MIB)

    // Given back to the kernel when the stress ends, not at some later garbage collection.
    await app.json("/stress/stop")
    await waitFor(
      "the memory to be given back",
      async () => ((await readCounters(app.pid)).rssBytes - before < 0.5 * 200 * MIB ? true : undefined),
      { timeoutMs: 3_000 },
    )
  })

  it("/stress/network sends at about the bandwidth asked", async () => {
    await app.json("/stress/network?bandwidth=80&duration=20")
    await waitFor("the network stress to connect", async () =>
      (await status()).applied.network_peer === null ? undefined : true,
    )
    const before = await readCounters(app.pid)
    const sentBefore = (await status()).applied.network_sent_bytes
    const start = performance.now()
    await sleep(1500)
    const after = await readCounters(app.pid)
    const sentAfter = (await status()).applied.network_sent_bytes
    const seconds = (performance.now() - start) / 1000
    const expected = 80 * 125_000 * seconds
    // Written by the process's system calls (the loopback sink reads as much back, in rchar).
    const written = after.writtenBytes - before.writtenBytes
    expect(written).toBeGreaterThan(0.5 * expected)
    expect(written).toBeLessThan(1.5 * expected)
    expect(after.readBytes - before.readBytes).toBeGreaterThan(0.5 * expected)
    expect(sentAfter - sentBefore).toBeGreaterThan(0.5 * expected)
  })

  it("/stress/incremental adds to the load; /stress/cpu replaces only the CPU part", async () => {
    await app.json("/stress/incremental?cpu=10&duration=30")
    const { body } = await app.json("/stress/incremental?cpu=15&memory=8&network=1&duration=30")
    expect(body.stress.jobs).toHaveLength(2)
    expect(body.stress.target).toEqual({ cpu_percent: 25, memory_mb: 8, network_mbps: 1 })
    expect(body.stress.applied).toMatchObject({ cpu_percent: 25, cpu_workers: 1, memory_mb: 8 })

    const replaced = (await app.json("/stress/cpu?target=5&duration=30")).body.stress
    // The first job asked for CPU only and is gone; the second keeps its memory and network.
    expect(replaced.jobs).toHaveLength(2)
    expect(replaced.target).toEqual({ cpu_percent: 5, memory_mb: 8, network_mbps: 1 })
  })

  it("ramps linearly to the target", async () => {
    await app.json("/stress/cpu?target=100&duration=4&ramp=2")
    await sleep(1000)
    const { target, jobs } = await status()
    expect(jobs[0].ramp_progress).toBeGreaterThan(0.35)
    expect(jobs[0].ramp_progress).toBeLessThan(0.8)
    expect(target.cpu_percent).toBeGreaterThan(35)
    expect(target.cpu_percent).toBeLessThan(80)
  })

  it("/stress/stop ends CPU, memory and network stress at once", async () => {
    await app.json("/stress/combined?cpu=60&memory=50&network=20&duration=30")
    await waitFor("the network stress to connect", async () =>
      (await status()).applied.network_peer === null ? undefined : true,
    )
    const { status: code, body } = await app.json("/stress/stop")
    expect(code).toBe(200)
    expect(body.stopped_jobs).toBe(1)
    expect(body.stress.active).toBe(false)
    expect(body.stress.applied).toMatchObject({
      cpu_workers: 0,
      memory_mb: 0,
      network_mbps: 0,
      network_peer: null,
    })

    const sent = body.stress.applied.network_sent_bytes
    expect(await cpuRate(500)).toBeLessThan(0.15)
    expect((await status()).applied.network_sent_bytes).toBe(sent)
  })

  it("sends to NETWORK_STRESS_TARGET: another web-stress's NETWORK_SINK_PORT; SIGTERM while stressed exits 0", async () => {
    const sink = await startWorkload("127.0.0.35", { NETWORK_SINK_PORT: "0" })
    onTestFinished(async () => {
      await sink.stop()
    })
    const sinkPort = (await sink.logged("sink listening")).port as number
    const sender = await startWorkload("127.0.0.36", { NETWORK_STRESS_TARGET: `127.0.0.35:${sinkPort}` })
    onTestFinished(async () => {
      await sender.stop()
    })

    await sender.json("/stress/combined?cpu=20&memory=20&network=40&duration=30")
    await waitFor("the sender to connect to the sink", async () => {
      const { applied } = (await sender.json("/stress/status")).body
      return applied.network_peer === null ? undefined : applied.network_peer
    })
    const before = (await sink.json("/metrics")).body.sink.received_bytes
    await sleep(1000)
    const received = (await sink.json("/metrics")).body.sink.received_bytes - before
    expect(received).toBeGreaterThan(0.5 * 40 * 125_000)
    expect(received).toBeLessThan(1.5 * 40 * 125_000)
    expect((await sender.json("/stress/status")).body.applied.network_loopback_received_bytes).toBe(0)

    const start = performance.now()
    expect(await sender.stop()).toBe(0)
    expect(performance.now() - start).toBeLessThan(3000)
    expect(sender.stdout()).toContain('"event":"stopped"')
  })
})
