/**
 * The Docker source's formulas on recorded Engine frames (cgroup v1, this machine's dockerd) and on
 * the hand-written cgroup v2 ones, each number checked against the raw fields with the Docker CLI's
 * formula written out; then properties of the rate, reset and allowance logic.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, Schema } from "effect"
import { ContainerLimits, ContainerList, StatsFrame } from "../../agent/docker/engine.ts"
import {
  containerRow,
  cpuAllowanceCores,
  cpuPercent,
  cpuPercentOfAllowance,
  mbps,
  memoryUsedBytes,
  networkRates,
  nextReading,
  type Reading,
  readTimeMs,
  taskSlot,
} from "../../agent/docker/formulas.ts"
import { ContainerMetrics } from "../../src/domain/AgentReport.ts"
import { fixture } from "./support/fake-engine.ts"

// Decoded with the source's own Schemas: they must accept what the Engine really sends.
const frames = (path: string) => Schema.decodeUnknownSync(Schema.Array(StatsFrame))(fixture(path))
const limits = (path: string) => Schema.decodeUnknownSync(ContainerLimits)(fixture(path)).HostConfig
const v1Busy = frames("cgroup-v1/stats-busy.json")
const v1Idle = frames("cgroup-v1/stats-idle.json")
const v2 = frames("cgroup-v2/stats.json")
const [busySummary, idleSummary] = Schema.decodeUnknownSync(ContainerList)(
  fixture("cgroup-v1/containers.json"),
)
const busyLimits = limits("cgroup-v1/inspect-busy.json")
const idleLimits = limits("cgroup-v1/inspect-idle.json")

/** Readings of a sequence of frames, each against the one before, as the source computes them. */
const readings = (sequence: ReadonlyArray<StatsFrame>): Array<Reading> => {
  const out: Array<Reading> = []
  for (const frame of sequence) out.push(nextReading(out.at(-1), frame)!)
  return out
}

const seconds = (before: StatsFrame, after: StatsFrame) =>
  (readTimeMs(after.read)! - readTimeMs(before.read)!) / 1000

describe("Docker formulas on recorded cgroup v1 frames", () => {
  const [r0, r1, r2] = readings(v1Busy)

  it("reads the Engine's nanosecond times to the sub-millisecond", () => {
    expect(readTimeMs("2026-11-25T15:48:21.728768282Z")).toBeCloseTo(
      Date.UTC(2026, 10, 25, 15, 48, 21) + 728.768282,
      6,
    )
    expect(readTimeMs("0001-01-01T00:00:00Z")).toBeUndefined()
  })

  it("the first frame has no rates: nothing to take a delta against", () => {
    expect(r0!.cpuPercent).toBe(0)
    expect([r0!.rxMbps, r0!.txMbps]).toEqual([0, 0])
  })

  it("CPU % = (cpu delta / system delta) × online CPUs × 100, from the Engine's precpu_stats", () => {
    for (const [reading, frame] of [
      [r1!, v1Busy[1]!],
      [r2!, v1Busy[2]!],
    ] as const) {
      const expected =
        ((frame.cpu_stats!.cpu_usage.total_usage - frame.precpu_stats!.cpu_usage.total_usage) /
          (frame.cpu_stats!.system_cpu_usage! - frame.precpu_stats!.system_cpu_usage!)) *
        frame.cpu_stats!.online_cpus! *
        100
      expect(reading.cpuPercent).toBeCloseTo(expected, 9)
    }
    // (5884179728 − 4882028624) / (4880600000000 − 4878580000000) × 2 × 100: one busy core.
    expect(r1!.cpuPercent).toBeCloseTo(99.2229, 3)
    expect(r2!.cpuPercent).toBeCloseTo(100.9835, 3)
  })

  it("one-shot frames (empty precpu_stats) take the delta against the previous frame, with the same result", () => {
    const oneShot = v1Busy.map((frame) => ({ ...frame, precpu_stats: { cpu_usage: { total_usage: 0 } } }))
    const [, s1, s2] = readings(oneShot)
    expect(s1!.cpuPercent).toBeCloseTo(r1!.cpuPercent, 9)
    expect(s2!.cpuPercent).toBeCloseTo(r2!.cpuPercent, 9)
  })

  it("memory used = usage − total_inactive_file; % of the limit", () => {
    const memory = v1Busy[1]!.memory_stats!
    expect(memory.stats!.total_inactive_file).toBeGreaterThan(0)
    expect(r1!.memoryUsedBytes).toBe(memory.usage! - memory.stats!.total_inactive_file!)
    expect(r1!.memoryUsedBytes).toBe(34734080 - 33169408)
    const row = containerRow(busySummary!, busyLimits, r1!, 2)
    expect(row.memory_mb).toBeCloseTo(1564672 / 1024 / 1024, 9)
    expect(row.memory_percent).toBeCloseTo((1564672 / 268435456) * 100, 9)
  })

  it("network Mbps = byte deltas summed over interfaces × 8 / 1e6 / seconds between the frames' reads", () => {
    const [f0, f1] = [v1Busy[0]!, v1Busy[1]!]
    const interval = seconds(f0, f1)
    expect(interval).toBeCloseTo(1.00523, 4)
    const rx =
      f1.networks!.eth0!.rx_bytes -
      f0.networks!.eth0!.rx_bytes +
      (f1.networks!.eth1!.rx_bytes - f0.networks!.eth1!.rx_bytes)
    const tx =
      f1.networks!.eth0!.tx_bytes -
      f0.networks!.eth0!.tx_bytes +
      (f1.networks!.eth1!.tx_bytes - f0.networks!.eth1!.tx_bytes)
    expect(rx).toBe(28980)
    expect(r1!.rxMbps).toBeCloseTo((rx * 8) / 1e6 / interval, 12)
    expect(r1!.txMbps).toBeCloseTo((tx * 8) / 1e6 / interval, 12)
  })

  it("a full row: Swarm identity, every network's address, --cpus 1.5 as the allowance", () => {
    const row = containerRow(busySummary!, busyLimits, r1!, 2)
    expect(Schema.is(ContainerMetrics)(row)).toBe(true)
    expect(row).toMatchObject({
      container_id: "b52654fe936c477f3eb4c910dc02a1e18e49fe766cb6e325776991c711d42835",
      container_name: "web-stress.2.k3x9q0v7w1y2z3a4b5c6d7e8f",
      service_name: "web-stress",
      task_id: "k3x9q0v7w1y2z3a4b5c6d7e8f",
      task_slot: 2,
      networks: { bridge: "172.17.0.2", "sg-rec-net": "172.18.0.3" },
      cpu_limit_cores: 1.5,
      sampled_at: Math.floor(readTimeMs(v1Busy[1]!.read)!),
    })
    expect(row.cpu_percent_of_limit).toBeCloseTo(r1!.cpuPercent / 1.5, 9)
  })

  it("an idle, unlimited Compose container: 0 % CPU, the host's cores, the host's memory as the limit", () => {
    const [, idle] = readings(v1Idle)
    const row = containerRow(idleSummary!, idleLimits, idle!, 2)
    expect(row).toMatchObject({
      container_name: "sg-rec-idle",
      service_name: "db",
      task_id: null,
      task_slot: null,
      cpu_percent: 0,
      cpu_limit_cores: 2,
      cpu_percent_of_limit: 0,
      networks: { "sg-rec-net": "172.18.0.2" },
    })
    expect(row.memory_percent).toBeCloseTo((327680 / 25276514304) * 100, 12)
  })
})

describe("Docker formulas on cgroup v2 frames", () => {
  const [, r1] = readings(v2)
  const apiLimits = limits("cgroup-v2/inspect.json")
  const [summary] = Schema.decodeUnknownSync(ContainerList)(fixture("cgroup-v2/containers.json"))

  it("CPU % with online_cpus and no percpu_usage; memory used = usage − inactive_file", () => {
    // (61.9e9 − 61.0e9) / (9008e9 − 9000e9) × 4 × 100
    expect(r1!.cpuPercent).toBeCloseTo((0.9e9 / 8e9) * 4 * 100, 9)
    expect(r1!.cpuPercent).toBeCloseTo(45, 9)
    expect(r1!.memoryUsedBytes).toBe(106954752 - 23068672)
  })

  it("rates over the two-second gap between reads; quota/period as the allowance", () => {
    const row = containerRow(summary!, apiLimits, r1!, 4)
    expect(row.network_rx_mbps).toBeCloseTo((2_500_000 * 8) / 1e6 / 2, 12)
    expect(row.network_tx_mbps).toBeCloseTo(((500_000 + 250_000) * 8) / 1e6 / 2, 12)
    expect(row.memory_mb).toBeCloseTo(80, 12)
    expect(row.memory_percent).toBeCloseTo(15.625, 12)
    expect(row.cpu_limit_cores).toBe(0.5)
    expect(row.cpu_percent_of_limit).toBeCloseTo(90, 9)
    expect(row).toMatchObject({
      service_name: "api_api",
      task_slot: 1,
      networks: { ingress: "10.0.0.7", api_default: "10.0.5.3" },
    })
  })
})

describe("Docker formulas: edges", () => {
  it("memory: the inactive page cache is not subtracted when it is not below usage", () => {
    expect(memoryUsedBytes({ usage: 100, stats: { total_inactive_file: 100, inactive_file: 40 } })).toBe(60)
    expect(memoryUsedBytes({ usage: 100, stats: { inactive_file: 120 } })).toBe(100)
    expect(memoryUsedBytes(undefined)).toBe(0)
  })

  it("allowance: NanoCpus, else quota/period (default period 100 ms), else the host; capped by host and cpuset", () => {
    expect(cpuAllowanceCores({ NanoCpus: 500_000_000, CpuQuota: 200_000, CpuPeriod: 100_000 }, 4)).toBe(0.5)
    expect(cpuAllowanceCores({ NanoCpus: 0, CpuQuota: 150_000, CpuPeriod: 0 }, 4)).toBe(1.5)
    expect(cpuAllowanceCores({ NanoCpus: 0, CpuQuota: -1, CpuPeriod: 0 }, 4)).toBe(4)
    expect(cpuAllowanceCores({ NanoCpus: 8e9 }, 2)).toBe(2)
    expect(cpuAllowanceCores({ CpusetCpus: "0,2-3" }, 8)).toBe(3)
  })

  it("task slot from `<service>.<slot>.<task id>`; none for a global service's `<service>.<node id>.<task id>`", () => {
    expect(taskSlot("web.3.abc", "abc")).toBe(3)
    expect(taskSlot("stack_web.12.x1y2", "x1y2")).toBe(12)
    expect(taskSlot("agent.n4x0cwqtv6fb.abc", "abc")).toBeNull()
    expect(taskSlot(undefined, undefined)).toBeNull()
  })

  it("a stopped container's empty frame is no reading", () => {
    expect(nextReading(undefined, { read: "0001-01-01T00:00:00Z" })).toBeUndefined()
  })
})

const counter = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
const interval = fc.double({ min: 0.001, max: 3600, noNaN: true })

describe("Docker formulas: properties", () => {
  it.prop(
    "rates are never negative",
    [counter, counter, fc.double({ min: -10, max: 3600, noNaN: true })],
    ([a, b, s]) => {
      expect(mbps(a, b, s)).toBeGreaterThanOrEqual(0)
    },
  )

  it.prop(
    "a counter that went backwards is a reset: 0 for that interval",
    [counter, counter, interval],
    ([a, b, s]) => {
      fc.pre(b < a)
      expect(mbps(a, b, s)).toBe(0)
    },
  )

  it.prop(
    "rate × interval = bytes delta when there is no reset",
    // Byte counters stay below 2^50 (a petabyte) so that `before + delta` is an exact double.
    [fc.integer({ min: 0, max: 2 ** 50 }), fc.integer({ min: 0, max: 1e12 }), interval],
    ([before, delta, s]) => {
      const bytes = (mbps(before, before + delta, s) * s * 1e6) / 8
      expect(Math.abs(bytes - delta)).toBeLessThanOrEqual(1e-9 * Math.max(1, delta))
    },
  )

  it.prop(
    "a reset on one interface leaves the other interfaces' rates alone",
    [counter, counter, fc.integer({ min: 0, max: 1e9 }), counter, interval],
    ([rxBefore, txBefore, rxDelta, reset, s]) => {
      fc.pre(reset < rxBefore)
      const rates = networkRates(
        {
          eth0: { rx_bytes: rxBefore, tx_bytes: txBefore },
          eth1: { rx_bytes: rxBefore, tx_bytes: txBefore },
        },
        {
          eth0: { rx_bytes: rxBefore + rxDelta, tx_bytes: txBefore },
          eth1: { rx_bytes: reset, tx_bytes: txBefore },
        },
        s,
      )
      expect(rates.rxMbps).toBeCloseTo(mbps(rxBefore, rxBefore + rxDelta, s), 9)
      expect(rates.txMbps).toBe(0)
    },
  )

  it.prop(
    "CPU % is never negative, and 0 when the container's counter went backwards",
    [counter, counter, counter, counter, fc.integer({ min: 1, max: 256 })],
    ([cpu0, cpu1, sys0, sys1, cpus]) => {
      const at = (total: number, system: number) => ({
        cpu_usage: { total_usage: total },
        system_cpu_usage: system,
        online_cpus: cpus,
      })
      const percent = cpuPercent(at(cpu0, sys0), at(cpu1, sys1))
      expect(percent).toBeGreaterThanOrEqual(0)
      if (cpu1 < cpu0) expect(percent).toBe(0)
    },
  )

  it.prop(
    "CPU % of the allowance = CPU % / allowance cores, in every row",
    [
      fc.double({ min: 0, max: 6400, noNaN: true }),
      fc.record({
        NanoCpus: fc.integer({ min: 0, max: 64e9 }),
        CpuQuota: fc.integer({ min: -1, max: 6_400_000 }),
        CpuPeriod: fc.integer({ min: 0, max: 1_000_000 }),
      }),
      fc.integer({ min: 1, max: 64 }),
    ],
    ([percent, limits, hostCpus]) => {
      const reading = { ...nextReading(undefined, v1Busy[1]!)!, cpuPercent: percent, onlineCpus: hostCpus }
      const row = containerRow(busySummary!, limits, reading, hostCpus)
      expect(row.cpu_limit_cores).toBeGreaterThan(0)
      expect(row.cpu_limit_cores).toBeLessThanOrEqual(hostCpus)
      expect(row.cpu_percent_of_limit).toBeCloseTo(percent / row.cpu_limit_cores!, 9)
      expect(cpuPercentOfAllowance(percent, row.cpu_limit_cores!) * row.cpu_limit_cores!).toBeCloseTo(
        percent,
        9,
      )
    },
  )
})
