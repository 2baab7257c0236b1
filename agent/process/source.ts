/**
 * StatsSource for machines without Docker (the local demo): each `PROCESS_TARGETS` entry is a local
 * process found by the address it listens on, reported like a container of its service, with its
 * address on `PROCESS_NETWORK`. Figures come from /proc and the process's cgroup: CPU time, resident
 * memory, and read/written bytes (sockets and files alike) standing in for network traffic.
 */
import { availableParallelism, hostname } from "node:os"
import { Effect, Layer } from "effect"
import type { ContainerMetrics } from "../../src/domain/AgentReport.ts"
import { AgentConfig, type AgentConfigShape } from "../Config.ts"
import { mbps } from "../docker/formulas.ts"
import { StatsSource, type StatsSourceShape } from "../StatsSource.ts"
import {
  cpuLimitCores,
  findListeningPid,
  memoryLimitBytes,
  memTotalBytes,
  type ProcessCounters,
  readCounters,
} from "./proc.ts"

type Target = AgentConfigShape["processTargets"][number]

interface Previous {
  readonly pid: number
  readonly counters: ProcessCounters
  readonly at: number
}

export const make = (
  targets: ReadonlyArray<Target>,
  network: string,
  nodeName: string,
): Effect.Effect<StatsSourceShape> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const hostCores = availableParallelism()
    const memTotal = yield* Effect.promise(memTotalBytes)
    const previous = new Map<string, Previous>()

    const sampleTarget = async (target: Target): Promise<ContainerMetrics | undefined> => {
      const id = `process-${target.host}-${target.port}`
      const known = previous.get(id)
      let pid = known?.pid
      let counters = pid === undefined ? undefined : await readCounters(pid).catch(() => undefined)
      if (counters === undefined) {
        // First sample, or the process was replaced: find who listens there now.
        pid = await findListeningPid(target.host, target.port)
        if (pid === undefined) {
          previous.delete(id)
          return undefined
        }
        counters = await readCounters(pid)
      }
      const at = clock.unsafeCurrentTimeMillis()
      const [cpuLimit, memoryLimit] = await Promise.all([cpuLimitCores(pid!), memoryLimitBytes(pid!)])
      const before = known?.pid === pid ? known : undefined
      previous.set(id, { pid: pid!, counters, at })
      const seconds = before === undefined ? 0 : (at - before.at) / 1000
      const cpuPercent =
        before === undefined || seconds <= 0
          ? 0
          : (Math.max(0, counters.cpuSeconds - before.counters.cpuSeconds) / seconds) * 100
      const allowance = cpuLimit ?? hostCores
      const limit = memoryLimit ?? memTotal
      return {
        container_id: id,
        container_name: `${target.service}@${target.host}:${target.port}`,
        service_name: target.service,
        cpu_percent: cpuPercent,
        memory_mb: counters.rssBytes / (1024 * 1024),
        memory_percent: limit > 0 ? (counters.rssBytes / limit) * 100 : 0,
        network_rx_mbps: before ? mbps(before.counters.readBytes, counters.readBytes, seconds) : 0,
        network_tx_mbps: before ? mbps(before.counters.writtenBytes, counters.writtenBytes, seconds) : 0,
        task_id: null,
        task_slot: null,
        networks: { [network]: target.host },
        cpu_limit_cores: allowance,
        cpu_percent_of_limit: cpuPercent / allowance,
        sampled_at: at,
      }
    }

    return {
      nodeName,
      sample: Effect.forEach(
        targets,
        // A process that vanishes mid-sample is left out of this sample, quietly.
        (target) => Effect.promise(() => sampleTarget(target).catch(() => undefined)),
        { concurrency: "unbounded" },
      ).pipe(Effect.map((rows) => rows.filter((row) => row !== undefined))),
    }
  })

export const layer = Layer.effect(
  StatsSource,
  Effect.flatMap(AgentConfig, (config) =>
    make(config.processTargets, config.processNetwork, config.nodeName ?? hostname()),
  ),
)
