// Pure arithmetic of stress jobs: linear ramps, sums of concurrent jobs, expiry, replacing one resource.
import { describe, expect, it } from "vitest"
import { type Job, loadAt, rampProgress, withoutResource } from "../../deploy/web-stress/stress/load.ts"

const job = (
  id: number,
  target: Partial<Job["target"]>,
  rampMs: number,
  durationMs: number,
  startedAt = 0,
): Job => ({
  id,
  kind: "incremental",
  target: { cpuPercent: 0, memoryMb: 0, networkMbps: 0, ...target },
  startedAt,
  rampMs,
  durationMs,
})

describe("stress load", () => {
  it("ramps linearly from 0 to the target over the ramp, then holds it", () => {
    const ramped = job(1, { cpuPercent: 80, memoryMb: 100 }, 10_000, 60_000)
    expect(rampProgress(ramped, 0)).toBe(0)
    expect(loadAt([ramped], 2_500)).toEqual({ cpuPercent: 20, memoryMb: 25, networkMbps: 0 })
    expect(loadAt([ramped], 10_000)).toEqual({ cpuPercent: 80, memoryMb: 100, networkMbps: 0 })
    expect(loadAt([ramped], 59_999).cpuPercent).toBe(80)
  })

  it("sums concurrent jobs and drops each at the end of its own duration", () => {
    const jobs = [
      job(1, { cpuPercent: 10, networkMbps: 5 }, 0, 5_000),
      job(2, { cpuPercent: 15 }, 0, 10_000, 1_000),
    ]
    expect(loadAt(jobs, 1_000)).toEqual({ cpuPercent: 25, memoryMb: 0, networkMbps: 5 })
    expect(loadAt(jobs, 5_000)).toEqual({ cpuPercent: 15, memoryMb: 0, networkMbps: 0 })
    expect(loadAt(jobs, 11_000)).toEqual({ cpuPercent: 0, memoryMb: 0, networkMbps: 0 })
  })

  it("taking one resource out keeps the others and drops jobs left empty", () => {
    const jobs = [job(1, { cpuPercent: 10 }, 0, 5_000), job(2, { cpuPercent: 15, memoryMb: 8 }, 0, 5_000)]
    const left = withoutResource(jobs, "cpuPercent")
    expect(left.map((entry) => entry.id)).toEqual([2])
    expect(left[0]!.target).toEqual({ cpuPercent: 0, memoryMb: 8, networkMbps: 0 })
  })
})
