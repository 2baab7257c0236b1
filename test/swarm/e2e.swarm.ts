/**
 * Swarm end to end (run by test/swarm/run.sh after the stack is deployed): the real images, the
 * real stack, traffic only through the balancer (127.0.0.1:8081) and the agent (127.0.0.1:8082).
 * The tests run in order and build on each other (stress → metrics algorithm → scale → kill → roll).
 */
import { request as httpRequest } from "node:http"
import { setTimeout as sleep } from "node:timers/promises"
import { afterAll, describe, expect, it } from "vitest"
import {
  AGENT,
  docker,
  execGet,
  getJson,
  LB,
  LB_SERVICE,
  load,
  log,
  replicas,
  shares,
  WEB,
  waitConverged,
  waitFor,
  webContainers,
  whoAnswers,
} from "./swarm.ts"

const short = (id: string) => id.slice(0, 12)
let stressed: string | undefined
const phase = async <A>(name: string, body: () => Promise<A>): Promise<A> => {
  const started = Date.now()
  try {
    return await body()
  } finally {
    log(`phase ${name}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
}

/** Services the labels phase creates beside the stack, removed at the end whatever happens. */
const LABELLED = ["sg-e2e-blue", "sg-e2e-green"] as const

afterAll(async () => {
  if (stressed !== undefined) await execGet(stressed, "/stress/stop").catch(() => undefined)
  await docker("service", "rm", ...LABELLED).catch(() => undefined)
  await docker("node", "update", "--label-rm", "zone", await thisNode()).catch(() => undefined)
})

const thisNode = () => docker("info", "--format", "{{.Swarm.NodeID}}")

/** GET through the balancer with a Host header of our choosing; the answering container's hostname. */
const answeredFor = (host: string): Promise<{ status: number; hostname: string }> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(`${LB}/health`, { headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      let text = ""
      res.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8")
      })
      res.on("end", () => {
        let hostname = "?"
        try {
          hostname = (JSON.parse(text) as { hostname?: string }).hostname ?? "?"
        } catch {}
        resolve({ status: res.statusCode ?? 0, hostname })
      })
    })
    req.on("timeout", () => req.destroy(new Error(`no answer for Host ${host}`)))
    req.on("error", reject)
    req.end()
  })

/** The short ids (= hostnames) of a service's running containers. */
const containersOf = async (service: string): Promise<ReadonlySet<string>> =>
  new Set(
    (await docker("ps", "--filter", `label=com.docker.swarm.service.name=${service}`, "--format", "{{.ID}}"))
      .split("\n")
      .filter((line) => line !== ""),
  )

describe("SwarmGuard on Docker Swarm", () => {
  it("routes requests through the balancer to all 3 replicas", () =>
    phase("all-replicas", async () => {
      const list = await waitConverged(3, 90_000)
      const containers = await webContainers()
      expect(new Set(list.map((r) => r.id))).toEqual(new Set(containers))
      const seen = await shares(30)
      log(`  30 GETs: ${JSON.stringify(Object.fromEntries(seen))}`)
      expect(new Set(seen.keys())).toEqual(new Set(containers.map(short)))
    }))

  it("the agent reports a stressed replica's CPU; /_lb/replicas shows it no older than 3 s", () =>
    phase("cpu-metrics", async () => {
      const target = (await webContainers())[0]!
      stressed = target
      await execGet(target, "/stress/cpu?target=50&duration=240")
      type Containers = { containers: ReadonlyArray<{ container_id: string; cpu_percent: number }> }
      const cpu = await waitFor(
        `the agent reporting CPU > 20 % for ${short(target)}`,
        async () => {
          const body = await getJson<Containers>(`${AGENT}/metrics/containers`)
          const entry = body.containers.find((c) => c.container_id === target)
          return entry !== undefined && entry.cpu_percent > 20 ? entry.cpu_percent : undefined
        },
        30_000,
        500,
      )
      log(`  agent: ${short(target)} cpu_percent ${cpu.toFixed(1)}`)
      expect(cpu).toBeGreaterThan(0)
      const view = await waitFor(
        `the balancer showing ${short(target)} with CPU > 20 %`,
        async () => {
          const r = (await replicas()).find((x) => x.id === target)
          return r?.metrics !== null && r !== undefined && r.metrics.cpu_percent > 20 ? r : undefined
        },
        15_000,
        250,
      )
      // Freshness: every sample over 5 s of polling is no older than 3 s.
      let oldest = 0
      for (let i = 0; i < 20; i++) {
        const r = (await replicas()).find((x) => x.id === target)
        expect(r?.metrics, "the stressed replica has metrics").not.toBeNull()
        oldest = Math.max(oldest, r!.metrics!.age_ms)
        await sleep(250)
      }
      log(`  balancer: cpu_percent ${view.metrics!.cpu_percent.toFixed(1)}, oldest age_ms ${oldest}`)
      expect(view.metrics!.cpu_percent).toBeGreaterThan(0)
      expect(oldest).toBeLessThanOrEqual(3_000)
    }))

  it("with LB_ALGORITHM=metrics the stressed replica gets under 20 % of a burst (and LOCALITY=zone reads the node's zone)", () =>
    phase("metrics-algorithm", async () => {
      expect(stressed, "the previous test stressed a replica").toBeDefined()
      // The zone is a node label, read from the manager's Engine when the balancer starts.
      await docker("node", "update", "--label-add", "zone=e2e-zone", await thisNode())
      await docker(
        "service",
        "update",
        "--detach",
        "--quiet",
        "--env-add",
        "LB_ALGORITHM=metrics",
        "--env-add",
        "LOCALITY=zone",
        LB_SERVICE,
      )
      await waitFor(
        "the balancer answering with algorithm metrics",
        async () => {
          const h = await getJson<{ algorithm: string; replicas_healthy: number }>(`${LB}/_lb/health`)
          return h.algorithm === "metrics" && h.replicas_healthy === 3 ? h : undefined
        },
        90_000,
        500,
      )
      await waitConverged(3, 30_000)
      // One node, one zone: every replica is local, and locality narrows nothing.
      expect((await replicas()).map((r) => r.local)).toEqual([true, true, true])
      // The stressed replica's CPU must be visible to the new balancer before the burst.
      await waitFor(
        "the new balancer seeing the stressed replica's CPU",
        async () => {
          const r = (await replicas()).find((x) => x.id === stressed)
          return r?.metrics !== null && r !== undefined && r.metrics.cpu_percent > 20 ? r : undefined
        },
        15_000,
      )
      // The scored selectors start each replica's cost estimate with a rotation for the first
      // sample interval (layers/selector/scored.ts): warm the new balancer for 4 s, then measure.
      const warm = await load(4_000, 1, "/compute/pi?iterations=1000")
      log(`  warm-up (4 s, sequential): ${JSON.stringify(Object.fromEntries(warm.byHost))}`)
      const burst = 60
      const seen = await shares(burst, "/compute/pi?iterations=1000")
      const share = (seen.get(short(stressed!)) ?? 0) / burst
      log(
        `  ${burst} GETs: ${JSON.stringify(Object.fromEntries(seen))}; stressed share ${(share * 100).toFixed(1)} %`,
      )
      expect(share).toBeLessThan(0.2)
    }))

  it("docker service scale web-stress=4: the new replica receives traffic within 10 s", () =>
    phase("scale", async () => {
      if (stressed !== undefined) await execGet(stressed, "/stress/stop")
      stressed = undefined
      const before = new Set(await webContainers())
      await docker("service", "scale", "--detach", `${WEB}=4`)
      const fresh = await waitFor(
        "a 4th web-stress container running",
        async () => (await webContainers()).find((c) => !before.has(c)),
        60_000,
        200,
      )
      const started = Date.now()
      log(`  new container ${short(fresh)} running`)
      const elapsed = await waitFor(
        `traffic reaching ${short(fresh)}`,
        async () => {
          const hosts = await Promise.all(
            Array.from({ length: 8 }, () => whoAnswers("/compute/pi?iterations=1000")),
          )
          return hosts.includes(short(fresh)) ? Date.now() - started : undefined
        },
        30_000,
        100,
      )
      log(`  first request reached it ${(elapsed / 1000).toFixed(1)} s after its container ran`)
      expect(elapsed).toBeLessThanOrEqual(10_000)
      await waitConverged(4, 60_000)
    }))

  it("a replica killed during a 20 s GET load: zero failed requests", () =>
    phase("kill", async () => {
      const [victim] = await webContainers()
      const running = load(20_000, 10)
      await sleep(5_000)
      await docker("kill", victim!)
      log(`  killed ${short(victim!)} at t=5 s`)
      const result = await running
      log(
        `  load: ${result.ok} ok, ${result.failed} failed; by replica ${JSON.stringify(Object.fromEntries(result.byHost))}`,
      )
      for (const f of result.failures) log(`  failure: ${f}`)
      expect(result.ok).toBeGreaterThan(100)
      expect(result.failed).toBe(0)
      await waitConverged(4, 90_000)
    }))

  it("a rolling docker service update of web-stress during load: zero failed requests", () =>
    phase("rolling-update", async () => {
      const before = new Set(await webContainers())
      let done = false
      const running = load(150_000, 10, "/compute/pi?iterations=1000", () => done)
      await sleep(2_000)
      await docker("service", "update", "--detach", "--quiet", "--force", WEB)
      try {
        await waitFor(
          "the rolling update to complete",
          async () => {
            const state = await docker(
              "service",
              "inspect",
              "--format",
              "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
              WEB,
            )
            if (state === "paused" || state.startsWith("rollback")) throw new Error(`update ${state}`)
            return state === "completed" ? state : undefined
          },
          140_000,
          1_000,
        )
        await sleep(3_000)
      } finally {
        done = true
      }
      const result = await running
      const after = await webContainers()
      log(`  load: ${result.ok} ok, ${result.failed} failed; replicas seen ${result.byHost.size}`)
      for (const f of result.failures) log(`  failure: ${f}`)
      expect(
        after.filter((c) => before.has(c)),
        "every task replaced",
      ).toEqual([])
      expect(result.ok).toBeGreaterThan(100)
      expect(result.failed).toBe(0)
    }))

  it("labelled services get only their own traffic, and --label-add reroutes without a restart", () =>
    phase("labels", async () => {
      const image = await docker(
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        WEB,
      )
      const [blue, green] = LABELLED
      for (const [service, host] of [
        [blue, "blue.test"],
        [green, "green.test"],
      ] as const) {
        await docker(
          "service",
          "create",
          "--detach",
          "--quiet",
          "--name",
          service,
          "--network",
          "swarmguard-net",
          "--endpoint-mode",
          "dnsrr",
          "--limit-cpu",
          "0.25",
          "--env",
          "PORT=8080",
          "--label",
          "swarmguard.enable=true",
          "--label",
          `swarmguard.rule=Host(\`${host}\`)`,
          "--label",
          "swarmguard.port=8080",
          "--label",
          "swarmguard.algorithm=round-robin",
          image,
        )
      }
      type RoutesView = { routes: ReadonlyArray<{ name: string; rule: string; replicas_healthy: number }> }
      await waitFor(
        "the balancer routing both labelled services",
        async () => {
          const { routes } = await getJson<RoutesView>(`${LB}/_lb/routes`)
          const ready = LABELLED.every((name) =>
            routes.some((r) => r.name === name && r.replicas_healthy === 1),
          )
          return ready ? routes : undefined
        },
        90_000,
        500,
      )
      for (const [service, host] of [
        [blue, "blue.test"],
        [green, "green.test"],
      ] as const) {
        // A new task is routed as soon as the agents report it, before its server listens.
        let last = ""
        await waitFor(
          `${host} answered by ${service}`,
          async () => {
            const { status, hostname } = await answeredFor(host)
            last = `${status} from ${hostname}`
            return status === 200 && (await containersOf(service)).has(hostname) ? true : undefined
          },
          60_000,
          500,
        ).catch(async (error: unknown) => {
          log(`  last answer for ${host}: ${last}`)
          log(await docker("service", "ps", "--no-trunc", service).catch(String))
          log(await docker("service", "logs", "--tail", "20", service).catch(String))
          log(JSON.stringify(await getJson(`${LB}/_lb/replicas`)))
          throw error
        })
      }
      const blueIds = await containersOf(blue)
      const greenIds = await containersOf(green)
      for (const [host, own] of [
        ["blue.test", blueIds],
        ["green.test", greenIds],
      ] as const) {
        for (let i = 0; i < 20; i++) {
          const { status, hostname } = await answeredFor(host)
          expect(status, host).toBe(200)
          expect(own.has(hostname), `${host} answered by ${hostname}`).toBe(true)
        }
      }
      // Any other host still reaches web-stress, through its catch-all label.
      const web = new Set((await webContainers()).map((id) => id.slice(0, 12)))
      expect(web.has((await answeredFor("other.test")).hostname)).toBe(true)

      const restartsBefore = await docker("service", "ps", "-q", green)
      const changedAt = Date.now()
      await docker(
        "service",
        "update",
        "--detach",
        "--quiet",
        "--label-add",
        "swarmguard.rule=Host(`teal.test`)",
        green,
      )
      const moved = await waitFor(
        "teal.test routed to the green service",
        async () => {
          const { status, hostname } = await answeredFor("teal.test")
          return status === 200 && greenIds.has(hostname) ? Date.now() - changedAt : undefined
        },
        30_000,
        250,
      )
      log(`  --label-add applied in ${(moved / 1000).toFixed(1)} s`)
      expect(moved).toBeLessThan(10_000)
      // green.test no longer matches green's rule; it falls to web-stress's catch-all.
      expect(greenIds.has((await answeredFor("green.test")).hostname)).toBe(false)
      // A label update restarts nothing: the same task, and the balancer kept running.
      expect(await docker("service", "ps", "-q", green)).toBe(restartsBefore)
    }))
})
