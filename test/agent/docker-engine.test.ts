/**
 * The Docker source against this machine's real dockerd (Debian docker.io, installed and started by
 * deploy/ensure-dockerd.sh when missing): a CPU burner, an idle container, and a burner held to half a
 * core by `--cpus 0.5`, all from the locally built busybox image.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { checkEngine, make } from "../../agent/docker/source.ts"
import { ContainerMetrics } from "../../src/domain/AgentReport.ts"
import { cgroupCpuCounter, recordCpu } from "./support/cgroup-cpu.ts"

const run = promisify(execFile)
const ensureDockerd = fileURLToPath(new URL("../../deploy/ensure-dockerd.sh", import.meta.url))
const socketPath = "/var/run/docker.sock"
const image = "swarmguard/busybox:local"
const tag = `sg-agent-test-${process.pid}-${Date.now().toString(36)}`
const names = { burner: `${tag}-burner`, idle: `${tag}-idle`, limited: `${tag}-limited` }
// A shell loop burning one core; `timeout` ends it even if this run dies before afterAll, and `--rm`
// then removes the container.
const burn = ["timeout", "120", "sh", "-c", "while :; do :; done"]

/**
 * This machine is shared with benchmarks that keep both cores busy, and on cgroup v1 every process
 * outside a cgroup weighs as much as all of Docker's containers together. The test measures the
 * source, not the scheduler: its containers get their own parent cgroup with a large CPU share, so the
 * burner really burns. On other hosts (cgroup v2, the systemd driver) nothing is changed.
 */
const cgroupRoot = "/sys/fs/cgroup"
let cgroupParent: string | undefined

const makeCgroupParent = async () => {
  const { stdout: driver } = await run("docker", ["info", "--format", "{{.CgroupDriver}}"])
  if (driver.trim() !== "cgroupfs" || !existsSync(`${cgroupRoot}/cpu/cpu.shares`)) return
  try {
    mkdirSync(`${cgroupRoot}/cpu/${tag}`)
    writeFileSync(`${cgroupRoot}/cpu/${tag}/cpu.shares`, "16384")
    cgroupParent = `/${tag}`
  } catch {
    // A read-only cgroup mount (inside a container): run without the boost.
  }
}

const removeCgroupParent = () => {
  for (const controller of readdirSync(cgroupRoot)) {
    const dir = `${cgroupRoot}/${controller}/${tag}`
    try {
      if (existsSync(dir)) rmdirSync(dir)
    } catch {
      // Busy for a moment after the containers' removal; an empty cgroup left behind costs nothing.
    }
  }
}

const dockerRun = (name: string, args: ReadonlyArray<string>, command: ReadonlyArray<string>) =>
  run("docker", [
    "run",
    "-d",
    "--rm",
    // An init as PID 1, so the `timeout` safety net can end the command (PID 1 ignores its signal).
    "--init",
    "--name",
    name,
    "--label",
    `swarmguard.test=${tag}`,
    ...(cgroupParent === undefined ? [] : ["--cgroup-parent", cgroupParent]),
    ...args,
    image,
    ...command,
  ])

beforeAll(async () => {
  await run("sh", [ensureDockerd], { timeout: 240_000 })
  await makeCgroupParent()
  await Promise.all([
    dockerRun(names.burner, [], burn),
    dockerRun(names.idle, [], ["sleep", "120"]),
    dockerRun(names.limited, ["--cpus", "0.5"], burn),
  ])
}, 300_000)

afterAll(async () => {
  await run("docker", ["rm", "-f", ...Object.values(names)]).catch(() => undefined)
  removeCgroupParent()
}, 60_000)

const mean = (values: ReadonlyArray<number>) => values.reduce((sum, value) => sum + value, 0) / values.length

/** Frames are a second apart: two rows further apart than this had a frame between them unseen. */
const CONSECUTIVE_MS = 1_500
/**
 * The Engine stamps a frame near, not exactly at, its reads of the cgroup and of the host's CPU time,
 * and takes the host's time as the interval: the kernel's count is taken over the frames' interval
 * widened and narrowed by this much, and held to 5 % more or less.
 */
const STAMP_SLACK_MS = 50

describe("Docker source on the real dockerd", () => {
  it.scopedLive(
    "sees each container's CPU as its cgroup counted it: the burner's, the idle one's below 10 %, the half-core burner's as a share of its allowance",
    () =>
      Effect.gen(function* () {
        const startedAt = Date.now()
        // The kernel's count of each container's CPU, read by the test from the container's cgroup.
        const counters = Object.fromEntries(
          yield* Effect.promise(() =>
            Promise.all(
              Object.values(names).map(async (name) => {
                const { stdout } = await run("docker", ["inspect", "--format", "{{.State.Pid}}", name])
                return [name, await cgroupCpuCounter(Number(stdout.trim()))] as const
              }),
            ),
          ),
        )
        const kernel = yield* Effect.acquireRelease(
          Effect.sync(() => recordCpu(counters)),
          (recorder) => Effect.promise(() => recorder.stop()),
        )
        // Frames read before this are not bracketed by the recorder's readings: they are not compared.
        const recordingSince = Date.now()

        const info = yield* checkEngine({ socketPath })
        const source = yield* make({ socketPath })
        expect(source.nodeName).toBe(info.Name)

        // Each stats frame is one Engine tick (1 s), its CPU taken against the frame before it. Polled
        // five times a second so that consecutive frames are seen, until three pairs of them are.
        const seen = new Map<string, Array<ContainerMetrics>>()
        const ours = new Set(Object.values(names))
        const pairsOf = (name: string) =>
          (seen.get(name) ?? []).flatMap((row, i, rows) =>
            i > 0 &&
            row.sampled_at! - rows[i - 1]!.sampled_at! <= CONSECUTIVE_MS &&
            rows[i - 1]!.sampled_at! - STAMP_SLACK_MS > recordingSince
              ? [{ previous: rows[i - 1]!, row }]
              : [],
          )
        const enough = () => [...ours].every((name) => pairsOf(name).length >= 3)
        for (let polls = 0; polls < 150 && !enough(); polls++) {
          for (const row of yield* source.sample) {
            if (!ours.has(row.container_name)) continue
            const rows = seen.get(row.container_name) ?? []
            if (rows.at(-1)?.sampled_at !== row.sampled_at) rows.push(row)
            seen.set(row.container_name, rows)
          }
          if (!enough()) yield* Effect.sleep("200 millis")
        }
        expect(enough(), JSON.stringify([...seen].map(([name, rows]) => [name, rows.length]))).toBe(true)
        // Let the recorder read past the last frame, so its interval is bracketed at both ends.
        yield* Effect.sleep(`${STAMP_SLACK_MS * 2} millis`)

        // Each row's CPU over its frame's interval is what the cgroup counted then.
        const figures: Array<string> = []
        for (const name of ours) {
          for (const { previous, row } of pairsOf(name)) {
            const seconds = (row.sampled_at! - previous.sampled_at!) / 1000
            const reported = (row.cpu_percent / 100) * seconds
            const widest = kernel.within(
              name,
              previous.sampled_at! - STAMP_SLACK_MS,
              row.sampled_at! + STAMP_SLACK_MS,
            )
            const narrowest = kernel.within(
              name,
              previous.sampled_at! + STAMP_SLACK_MS,
              row.sampled_at! - STAMP_SLACK_MS,
            )
            const figure = `${name}: ${reported.toFixed(3)} CPU s reported over ${seconds} s, the cgroup's ${narrowest.min.toFixed(3)} to ${widest.max.toFixed(3)}`
            figures.push(figure)
            expect(reported, figure).toBeGreaterThanOrEqual(narrowest.min * 0.95 - 0.005)
            expect(reported, figure).toBeLessThanOrEqual(widest.max * 1.05 + 0.005)
          }
        }
        yield* Effect.promise(() => kernel.stop())

        const last = (name: string) => pairsOf(name).map(({ row }) => row)
        const cpu = (name: string) => mean(last(name).map((row) => row.cpu_percent))
        const ofLimit = (name: string) => mean(last(name).map((row) => row.cpu_percent_of_limit!))
        const burner = last(names.burner).at(-1)!
        const limited = last(names.limited).at(-1)!

        // Every figure, for the failure message: what was reported, what the kernel counted, how busy.
        const measured = `burner ${cpu(names.burner).toFixed(1)} %, idle ${cpu(names.idle).toFixed(1)} %, limited ${ofLimit(names.limited).toFixed(1)} % of ${limited.cpu_limit_cores} cores; load ${loadavg()[0]!.toFixed(2)}; ${figures.join("; ")}`
        // The burner is seen burning (and the figures above are the cgroup's); a busy machine can only
        // lower the idle one's figure, and the quota caps the limited one's (a period's 50 ms at an
        // interval's edge is 10 % of its allowance over a second).
        expect(cpu(names.burner), measured).toBeGreaterThan(0)
        expect(cpu(names.idle), measured).toBeLessThan(10)
        expect(limited.cpu_limit_cores).toBe(0.5)
        expect(limited.cpu_percent_of_limit!).toBeCloseTo(limited.cpu_percent / 0.5, 9)
        expect(ofLimit(names.limited), measured).toBeLessThan(115)
        expect(burner.cpu_limit_cores).toBe(info.NCPU)

        for (const rows of seen.values()) {
          const row = rows.at(-1)!
          expect(Schema.is(ContainerMetrics)(row)).toBe(true)
          expect(row.service_name).toBe(row.container_name)
          expect(row).toMatchObject({ task_id: null, task_slot: null })
          expect(row.networks?.bridge).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
          expect(row.memory_mb).toBeGreaterThan(0)
          // Epoch milliseconds of this run: a stream's first frame may have been read up to a second
          // before the stream opened.
          expect(row.sampled_at!).toBeGreaterThanOrEqual(startedAt - 1_000)
          expect(row.sampled_at!).toBeLessThanOrEqual(Date.now())
        }
      }),
    90_000,
  )
})
