/**
 * Background stress consumes the real resource: CPU time, resident memory and bytes written, as the
 * kernel counts them for the workload's process (what an agent reading /proc or cgroups would see).
 * The machine is shared, so nothing here depends on how much of it the workload gets: CPU is judged
 * by what the process asked the scheduler for, and traffic is awaited until it has flowed, then held
 * to the most the asked rate allows.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { readCounters } from "../../agent/process/proc.ts"
import { schedWindow } from "../support/schedstat.ts"
import { waitFor } from "../support/wait.ts"
import { startWorkload, type Workload } from "./app.ts"

const MIB = 1024 * 1024
/** Bytes per second in one megabit per second. */
const BYTES_PER_MBIT = 125_000

/**
 * The most a sender at `mbps` may have written in `seconds`: its rate, the quarter second of credit its
 * token bucket holds, and one 64 KiB write rounding it up.
 */
const mostSent = (mbps: number, seconds: number) => mbps * BYTES_PER_MBIT * (seconds + 0.25) + 64 * 1024

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
    const { status: code, body } = await app.json("/stress/cpu?target=50&duration=30")
    expect(code).toBe(200)
    expect(body.stress.target.cpu_percent).toBe(50)
    expect(body.stress.applied.cpu_workers).toBe(1)

    // A window well inside the job: the burner is runnable half of each 100 ms slice, on a core or
    // waiting for one, however busy the machine is.
    const window = await schedWindow(app.pid)
    await sleep(1500)
    const asked = await window.end()
    expect(asked.running, "it burns").toBeGreaterThan(0)
    expect(asked.running + asked.waiting, JSON.stringify(asked)).toBeGreaterThan(0.35)
    // Duty-cycled, not a spinning core: a busy machine can only lower what it gets.
    expect(asked.running, JSON.stringify(asked)).toBeLessThan(0.85)

    // A short job in its place ends by itself.
    expect((await app.json("/stress/cpu?target=50&duration=1")).body.stress.jobs).toHaveLength(1)
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
    // Two seconds' worth, awaited rather than slept for: a busy machine only makes it take longer.
    const goal = 2 * 80 * BYTES_PER_MBIT
    const sentAfter = await waitFor(
      "two seconds' worth of traffic at 80 Mbit/s",
      async () => {
        const sent = (await status()).applied.network_sent_bytes
        return sent - sentBefore >= goal ? sent : undefined
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    )
    const after = await readCounters(app.pid)
    const seconds = (performance.now() - start) / 1000
    const sent = sentAfter - sentBefore
    // Never faster than asked, however fast the machine.
    expect(sent).toBeLessThanOrEqual(mostSent(80, seconds))
    // Written by the process's system calls, and read back by its loopback sink (rchar): what is still
    // queued in user space or the kernel's socket buffers is a few MiB at most.
    expect(after.writtenBytes - before.writtenBytes).toBeGreaterThan(0.5 * sent)
    expect(after.readBytes - before.readBytes).toBeGreaterThan(0.5 * sent)
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
    const first = (await app.json("/stress/cpu?target=100&duration=30&ramp=3")).body.stress
    // Every status along the ramp, until it is complete: each must sit on the line from 0 to 100 %.
    const samples = [first]
    await waitFor(
      "the ramp to complete",
      async () => {
        const sample = await status()
        samples.push(sample)
        return sample.target.cpu_percent === 100 ? true : undefined
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    )
    for (const { target, jobs } of samples) {
      const [job] = jobs
      // Both figures are rounded to hundredths, hence a hundredth of tolerance.
      expect(Math.abs(job.ramp_progress - Math.min(1, job.elapsed_s / job.ramp_s))).toBeLessThanOrEqual(0.01)
      expect(Math.abs(target.cpu_percent - 100 * job.ramp_progress)).toBeLessThanOrEqual(0.5)
    }
    const progress = samples.map((sample) => sample.jobs[0].ramp_progress)
    expect(progress).toEqual([...progress].sort((a, b) => a - b))
    expect(progress[0]).toBeLessThan(0.5)
    // Seen on its way, not only at its ends.
    expect(
      progress.some((value) => value > 0 && value < 1),
      JSON.stringify(progress),
    ).toBe(true)
    expect(samples.at(-1)!.target.cpu_percent).toBe(100)
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
    const start = performance.now()
    // A second's worth, awaited rather than slept for: a busy machine only makes it take longer.
    const received = await waitFor(
      "the sink to receive a second's worth at 40 Mbit/s",
      async () => {
        const bytes = (await sink.json("/metrics")).body.sink.received_bytes - before
        return bytes >= 40 * BYTES_PER_MBIT ? bytes : undefined
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    )
    // Never faster than asked; the socket buffers' backlog from before the window counts too.
    expect(received).toBeLessThanOrEqual(mostSent(40, (performance.now() - start) / 1000) + 8 * MIB)
    expect((await sender.json("/stress/status")).body.applied.network_loopback_received_bytes).toBe(0)

    // SIGTERM while stressed: a clean exit (the helper kills it, and fails, after 10 s).
    expect(await sender.stop()).toBe(0)
    expect(sender.stdout()).toContain('"event":"stopped"')
  })
})
