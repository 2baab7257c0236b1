/**
 * The process source on real processes: a CPU burner and an idle server listening on loopback
 * addresses, and a burner held to half a core by a cgroup CPU quota. The machine is shared, so how much
 * CPU the burners get varies: what the source reports is checked against what the kernel accounted to
 * each process over the same interval, not against fixed shares.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, rmdirSync, writeFileSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { make } from "../../agent/process/source.ts"
import type { ContainerMetrics } from "../../src/domain/AgentReport.ts"
import { waitFor } from "../support/wait.ts"

/** A server on host:port that, when `burn` is set, keeps one core busy between requests. */
const serverCode = (host: string, port: number, burn: boolean) => `
  require("node:http").createServer((req, res) => res.end("ok")).listen(${port}, "${host}", () => console.log("ready"))
  ${burn ? "const spin = () => { const end = Date.now() + 20; while (Date.now() < end); setImmediate(spin) }; spin()" : ""}
`

const start = (host: string, port: number, burn: boolean) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", serverCode(host, port, burn)], {
      stdio: ["ignore", "pipe", "inherit"],
    })
    child.once("error", reject)
    child.stdout!.once("data", () => resolve(child))
  })

const QUOTA_CGROUP = "/sys/fs/cgroup/cpu/swarmguard-process-source-test"

/** User plus system CPU seconds of `pid` so far (/proc/<pid>/stat, in USER_HZ ticks of 10 ms). */
const cpuSeconds = async (pid: number): Promise<number> => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8")
  // Fields counted after the command name's closing parenthesis: utime and stime are 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const HOSTS = ["127.0.0.5", "127.0.0.6", "127.0.0.7"]

/** Each child's CPU seconds so far, by the host it listens on. */
const cpuByHost = async () =>
  Object.fromEntries(
    await Promise.all(HOSTS.map(async (host, i) => [host, await cpuSeconds(children[i]!.pid!)])),
  )
const children: Array<ChildProcess> = []

beforeAll(async () => {
  children.push(await start("127.0.0.5", 18431, true), await start("127.0.0.6", 18432, false))
  const limited = await start("127.0.0.7", 18433, true)
  children.push(limited)
  mkdirSync(QUOTA_CGROUP, { recursive: true })
  writeFileSync(`${QUOTA_CGROUP}/cpu.cfs_period_us`, "100000")
  writeFileSync(`${QUOTA_CGROUP}/cpu.cfs_quota_us`, "50000")
  writeFileSync(`${QUOTA_CGROUP}/cgroup.procs`, String(limited.pid))
})

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill()
  })

afterAll(async () => {
  await Promise.all(children.map(stop))
  rmdirSync(QUOTA_CGROUP)
})

describe("process source", () => {
  it("reports CPU, memory and addresses of the processes listening at the targets", async () => {
    const source = await Effect.runPromise(
      make(
        [
          { service: "web-stress", host: "127.0.0.5", port: 18431 },
          { service: "web-stress", host: "127.0.0.6", port: 18432 },
          { service: "web-stress", host: "127.0.0.7", port: 18433 },
          { service: "web-stress", host: "127.0.0.8", port: 18434 },
        ],
        "swarmguard-net",
        "local",
      ),
    )
    // The kernel's counts just before and after each sample bracket the counts the source read.
    const outerStart = await cpuByHost()
    const firstRows = await Effect.runPromise(source.sample)
    const innerStart = await cpuByHost()
    // Until the burners have used a measurable amount of CPU, however long a busy machine takes; the
    // limited one long enough (over a second at half a core) that its quota shows in the rate.
    await waitFor(
      "the burners to use CPU",
      async () => {
        const now = await cpuByHost()
        return now["127.0.0.5"]! - innerStart["127.0.0.5"]! >= 0.3 &&
          now["127.0.0.7"]! - innerStart["127.0.0.7"]! >= 0.6
          ? true
          : undefined
      },
      { timeoutMs: 40_000, intervalMs: 50 },
    )
    const innerEnd = await cpuByHost()
    const rows = await Effect.runPromise(source.sample)
    const outerEnd = await cpuByHost()
    const byHost = new Map<string, ContainerMetrics>(
      rows.map((row) => [row.networks!["swarmguard-net"]!, row]),
    )
    const firstByHost = new Map<string, ContainerMetrics>(
      firstRows.map((row) => [row.networks!["swarmguard-net"]!, row]),
    )

    // Nothing listens on 127.0.0.8: that target is left out.
    expect([...byHost.keys()].sort()).toEqual(["127.0.0.5", "127.0.0.6", "127.0.0.7"])
    // Each process's CPU % over the interval between its two samples (sampled_at, epoch ms) is the
    // CPU the kernel accounted to it then: no less than between the samples, no more than around them.
    for (const host of HOSTS) {
      const row = byHost.get(host)!
      const seconds = (row.sampled_at! - firstByHost.get(host)!.sampled_at!) / 1000
      const reported = (row.cpu_percent / 100) * seconds
      const bracket = `${host}: ${reported.toFixed(3)} CPU s reported over ${seconds} s, the kernel's ${(innerEnd[host]! - innerStart[host]!).toFixed(2)} to ${(outerEnd[host]! - outerStart[host]!).toFixed(2)}`
      expect(reported, bracket).toBeGreaterThanOrEqual(innerEnd[host]! - innerStart[host]! - 1e-9)
      expect(reported, bracket).toBeLessThanOrEqual(outerEnd[host]! - outerStart[host]! + 1e-9)
    }
    const busy = byHost.get("127.0.0.5")!
    const idle = byHost.get("127.0.0.6")!
    const limited = byHost.get("127.0.0.7")!
    // A busy machine can only lower these.
    expect(idle.cpu_percent).toBeLessThan(10)
    expect(busy).toMatchObject({ service_name: "web-stress", container_id: "process-127.0.0.5-18431" })
    expect(busy.memory_mb).toBeGreaterThan(10)
    // Half a core allowed: its share of that allowance, and never more than the quota lets it use (a
    // period's 50 ms at an interval's edge is at most 5 % over a second or more).
    expect(limited.cpu_limit_cores).toBe(0.5)
    expect(limited.cpu_percent_of_limit).toBeCloseTo(limited.cpu_percent / 0.5, 9)
    expect(limited.cpu_percent).toBeLessThan(60)
    expect(limited.cpu_percent_of_limit).toBeLessThan(115)
  })
})
