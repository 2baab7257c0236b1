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

describe("Docker source on the real dockerd", () => {
  it.scopedLive(
    "sees the burner above 50 %, the idle one below 10 %, the half-core burner at about 100 % of its allowance",
    () =>
      Effect.gen(function* () {
        const info = yield* checkEngine({ socketPath })
        const source = yield* make({ socketPath })
        expect(source.nodeName).toBe(info.Name)

        // Each stats frame is one Engine tick (1 s). The first reading of a container has no rate by
        // design; the next three give its CPU over three seconds.
        const seen = new Map<string, Array<ContainerMetrics>>()
        const ours = new Set(Object.values(names))
        const enough = () => seen.size === ours.size && [...seen.values()].every((rows) => rows.length >= 4)
        for (let polls = 0; polls < 12 && !enough(); polls++) {
          for (const row of yield* source.sample) {
            if (!ours.has(row.container_name)) continue
            const rows = seen.get(row.container_name) ?? []
            if (rows.at(-1)?.sampled_at !== row.sampled_at) rows.push(row)
            seen.set(row.container_name, rows)
          }
          if (!enough()) yield* Effect.sleep("1 second")
        }
        expect(enough()).toBe(true)

        const last = (name: string) => seen.get(name)!.slice(1)
        const cpu = (name: string) => mean(last(name).map((row) => row.cpu_percent))
        const ofLimit = (name: string) => mean(last(name).map((row) => row.cpu_percent_of_limit!))
        const burner = last(names.burner).at(-1)!
        const limited = last(names.limited).at(-1)!

        // Every figure, for the failure message: a miss says by how much, and whether the host was busy.
        const measured = `burner ${cpu(names.burner).toFixed(1)} %, idle ${cpu(names.idle).toFixed(1)} %, limited ${ofLimit(names.limited).toFixed(1)} % of ${limited.cpu_limit_cores} cores; load ${loadavg()[0]!.toFixed(2)}`
        expect(cpu(names.burner), measured).toBeGreaterThan(50)
        expect(cpu(names.idle), measured).toBeLessThan(10)
        expect(limited.cpu_limit_cores).toBe(0.5)
        expect(ofLimit(names.limited), measured).toBeGreaterThan(75)
        expect(ofLimit(names.limited), measured).toBeLessThan(115)
        expect(burner.cpu_limit_cores).toBe(info.NCPU)

        for (const rows of seen.values()) {
          const row = rows.at(-1)!
          expect(Schema.is(ContainerMetrics)(row)).toBe(true)
          expect(row.service_name).toBe(row.container_name)
          expect(row).toMatchObject({ task_id: null, task_slot: null })
          expect(row.networks?.bridge).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
          expect(row.memory_mb).toBeGreaterThan(0)
          expect(Math.abs(Date.now() - row.sampled_at!)).toBeLessThan(5_000)
        }
      }),
    60_000,
  )
})
