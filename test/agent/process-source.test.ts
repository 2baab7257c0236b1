/**
 * The process source on real processes: a CPU burner and an idle server listening on loopback
 * addresses, and a burner held to half a core by a cgroup CPU quota.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, rmdirSync, writeFileSync } from "node:fs"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { make } from "../../agent/process/source.ts"
import type { ContainerMetrics } from "../../src/domain/AgentReport.ts"

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
    await Effect.runPromise(source.sample)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const rows = await Effect.runPromise(source.sample)
    const byHost = new Map<string, ContainerMetrics>(
      rows.map((row) => [row.networks!["swarmguard-net"]!, row]),
    )

    // Nothing listens on 127.0.0.8: that target is left out.
    expect([...byHost.keys()].sort()).toEqual(["127.0.0.5", "127.0.0.6", "127.0.0.7"])
    const busy = byHost.get("127.0.0.5")!
    const idle = byHost.get("127.0.0.6")!
    const limited = byHost.get("127.0.0.7")!
    // A whole core when the machine is quiet; the bound leaves room for a busy shared machine.
    expect(busy.cpu_percent).toBeGreaterThan(25)
    expect(idle.cpu_percent).toBeLessThan(10)
    expect(busy).toMatchObject({ service_name: "web-stress", container_id: "process-127.0.0.5-18431" })
    expect(busy.memory_mb).toBeGreaterThan(10)
    // Half a core allowed and used up: about 100% of its allowance.
    expect(limited.cpu_limit_cores).toBe(0.5)
    expect(limited.cpu_percent).toBeLessThan(60)
    expect(limited.cpu_percent_of_limit).toBeGreaterThan(70)
    expect(limited.cpu_percent_of_limit).toBeLessThan(115)
  })
})
