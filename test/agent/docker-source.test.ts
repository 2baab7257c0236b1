/**
 * The Docker source's real dockerode code against a fake Engine on a unix socket serving recorded
 * responses: the rows it reports, and its faults — a container that vanishes, a slow one, the Engine
 * going away and coming back, and the one-line reasons it gives when it cannot start.
 */
import { spawn } from "node:child_process"
import { chmodSync, writeFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import {
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  Layer,
  Schedule,
  Schema,
  Scope,
} from "effect"
import { AgentConfig } from "../../agent/Config.ts"
import { connectionFromDockerHost } from "../../agent/docker/connection.ts"
import { unavailableReason } from "../../agent/docker/engine.ts"
import { layer as dockerLayer, make } from "../../agent/docker/source.ts"
import { StatsSource, type StatsSourceShape } from "../../agent/StatsSource.ts"
import { ContainerMetrics } from "../../src/domain/AgentReport.ts"
import { cgroupV1, cgroupV2, type FakeContainer, startFakeEngine } from "./support/fake-engine.ts"

const engine = (info: Record<string, unknown>, containers: ReadonlyArray<FakeContainer>) =>
  Effect.acquireRelease(
    Effect.promise(() => startFakeEngine(info, containers)),
    (fake) => Effect.promise(() => fake.close()),
  )

const idOf = (container: FakeContainer) => container.summary.Id as string
const readMs = (container: FakeContainer, frame: number) =>
  Math.floor(Date.parse(`${(container.frames[frame]!.read as string).slice(0, 23)}Z`))

const byId = (rows: ReadonlyArray<ContainerMetrics>) => new Map(rows.map((row) => [row.container_id, row]))

/** Samples until `ready` holds (the source is fed by streams, so a tick shows up a moment later). */
const sampleUntil = (
  source: StatsSourceShape,
  ready: (rows: Map<string, ContainerMetrics>) => boolean,
  within: Duration.DurationInput = "3 seconds",
) =>
  source.sample.pipe(
    Effect.map(byId),
    Effect.filterOrFail(ready, () => "not yet"),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo(within))),
  )

const v1 = cgroupV1()
const busyId = idOf(v1.busy)
const idleId = idOf(v1.idle)

describe("Docker source on a fake Engine (recorded cgroup v1 responses)", () => {
  it.scopedLive(
    "reports what the formulas give for the recorded frames, inspecting each container once",
    () =>
      Effect.gen(function* () {
        const fake = yield* engine(v1.info, [v1.busy, v1.idle])
        const source = yield* make({ socketPath: fake.socketPath, staleAfterMs: 60_000 })
        expect(source.nodeName).toBe("vm")

        // Startup waited for every stream's first frame: the first sample is complete.
        const first = byId(yield* source.sample)
        expect([...first.keys()].sort()).toEqual([busyId, idleId].sort())
        expect(first.get(busyId)).toMatchObject({
          cpu_percent: 0,
          network_rx_mbps: 0,
          sampled_at: readMs(v1.busy, 0),
        })

        fake.tick()
        const second = yield* sampleUntil(
          source,
          (rows) => rows.get(busyId)?.sampled_at === readMs(v1.busy, 1),
        )
        const busy = second.get(busyId)!
        // (5884179728 − 4882028624) / (4880600000000 − 4878580000000) × 2 × 100, from precpu_stats.
        expect(busy.cpu_percent).toBeCloseTo((1002151104 / 2020000000) * 2 * 100, 9)
        // 28980 and 28840 bytes over the 1.005230 s between the two frames' reads.
        expect(busy.network_rx_mbps).toBeCloseTo((28980 * 8) / 1e6 / 1.005230224609375, 6)
        expect(busy.network_tx_mbps).toBeCloseTo((28840 * 8) / 1e6 / 1.005230224609375, 6)
        expect(busy).toMatchObject({
          container_name: "web-stress.2.k3x9q0v7w1y2z3a4b5c6d7e8f",
          service_name: "web-stress",
          task_id: "k3x9q0v7w1y2z3a4b5c6d7e8f",
          task_slot: 2,
          networks: { bridge: "172.17.0.2", "sg-rec-net": "172.18.0.3" },
          cpu_limit_cores: 1.5,
          memory_mb: (34734080 - 33169408) / 1024 / 1024,
          memory_percent: ((34734080 - 33169408) / 268435456) * 100,
        })
        expect(busy.cpu_percent_of_limit).toBeCloseTo(busy.cpu_percent / 1.5, 9)
        expect(second.get(idleId)).toMatchObject({ service_name: "db", cpu_percent: 0, cpu_limit_cores: 2 })
        expect(Schema.is(Schema.Array(ContainerMetrics))([...second.values()])).toBe(true)

        fake.tick()
        yield* sampleUntil(source, (rows) => rows.get(busyId)?.sampled_at === readMs(v1.busy, 2))
        expect(fake.requests.get(`GET /containers/${busyId}/json`)).toBe(1)
        expect(fake.requests.get(`GET /containers/${idleId}/json`)).toBe(1)
        expect([fake.streamOpens(busyId), fake.streamOpens(idleId)]).toEqual([1, 1])
      }),
  )

  it.scopedLive("leaves out, quietly, a container listed but gone by the time it is inspected", () =>
    Effect.gen(function* () {
      const fake = yield* engine(v1.info, [v1.busy, v1.idle])
      fake.vanish(idleId)
      const source = yield* make({ socketPath: fake.socketPath, warmUpMs: 500 })
      const rows = yield* source.sample
      expect(rows.map((row) => row.container_id)).toEqual([busyId])
    }),
  )

  it.scopedLive("a slow container delays no one: the others are sampled, it joins when it answers", () =>
    Effect.gen(function* () {
      const fake = yield* engine(v1.info, [v1.busy, v1.idle])
      fake.slow(idleId, true)
      const requestTimeoutMs = 5_000
      const source = yield* make({
        socketPath: fake.socketPath,
        warmUpMs: 200,
        staleAfterMs: 400,
        requestTimeoutMs,
      })
      fake.tick()
      const [took, rows] = yield* Effect.timed(
        sampleUntil(source, (rows) => rows.get(busyId)?.sampled_at === readMs(v1.busy, 1)),
      )
      expect([...rows.keys()]).toEqual([busyId])
      // Its stats request hangs until the request timeout; nobody waits for it. The bound is that
      // timeout itself, not a speed: a sample or a frame that came only after it had waited for it.
      const [sampleTook] = yield* Effect.timed(source.sample)
      expect(Duration.toMillis(sampleTook)).toBeLessThan(requestTimeoutMs)
      expect(Duration.toMillis(took)).toBeLessThan(requestTimeoutMs)

      // Its request never answered; once quiet for staleAfterMs the stream is reopened, and it is back.
      fake.slow(idleId, false)
      yield* sampleUntil(source, (rows) => rows.has(idleId))
    }),
  )

  it.scopedLive("a stream that goes quiet keeps its last values until they are stale, then is reopened", () =>
    Effect.gen(function* () {
      const fake = yield* engine(v1.info, [v1.busy, v1.idle])
      const source = yield* make({ socketPath: fake.socketPath, staleAfterMs: 1_500, requestTimeoutMs: 300 })
      fake.slow(busyId, true)
      fake.tick()
      // The idle one moves on; the busy one is reported with its previous values and their own time.
      const rows = yield* sampleUntil(source, (rows) => rows.get(idleId)?.sampled_at === readMs(v1.idle, 1))
      expect(rows.get(busyId)?.sampled_at).toBe(readMs(v1.busy, 0))
      // Past staleAfterMs it is left out, not reported with old numbers as if they were current.
      yield* sampleUntil(source, (rows) => !rows.has(busyId) && rows.has(idleId))
      fake.slow(busyId, false)
      const back = yield* sampleUntil(source, (rows) => rows.get(busyId)?.sampled_at === readMs(v1.busy, 1))
      expect(back.get(busyId)!.cpu_limit_cores).toBe(1.5)
      expect(fake.streamOpens(busyId)).toBeGreaterThanOrEqual(2)
    }),
  )

  it.scopedLive("fails while the Engine is down and recovers by itself when it is back", () =>
    Effect.gen(function* () {
      const fake = yield* engine(v1.info, [v1.busy, v1.idle])
      const source = yield* make({ socketPath: fake.socketPath, staleAfterMs: 60_000 })
      yield* source.sample
      yield* Effect.promise(() => fake.stop())
      const down = yield* Effect.flip(source.sample)
      expect(down._tag).toBe("SourceUnavailable")
      expect(down.reason).toBe(
        `no Docker Engine socket at ${fake.socketPath}: is dockerd running? (DOCKER_HOST selects another Engine)`,
      )
      expect((yield* Effect.flip(source.sample)).reason).toBe(down.reason)

      yield* Effect.promise(() => fake.start())
      fake.tick()
      const rows = yield* sampleUntil(source, (rows) => rows.get(busyId)?.sampled_at === readMs(v1.busy, 1))
      expect(rows.has(idleId)).toBe(true)
      // The streams were reopened after the outage.
      expect(fake.streamOpens(busyId)).toBe(2)
    }),
  )

  it.scopedLive("forgets a removed container at once and closes its stream", () =>
    Effect.gen(function* () {
      const fake = yield* engine(v1.info, [v1.busy, v1.idle])
      const source = yield* make({ socketPath: fake.socketPath, staleAfterMs: 60_000 })
      expect((yield* source.sample).length).toBe(2)
      fake.remove(idleId)
      expect((yield* source.sample).map((row) => row.container_id)).toEqual([busyId])
      yield* sampleUntil(source, () => fake.openStreams(idleId) === 0)
    }),
  )

  it.scopedLive("closes every stream when its scope closes", () =>
    Effect.gen(function* () {
      const fake = yield* engine(v1.info, [v1.busy, v1.idle])
      const scope = yield* Scope.make()
      yield* make({ socketPath: fake.socketPath }).pipe(Scope.extend(scope))
      expect(fake.openStreams(busyId) + fake.openStreams(idleId)).toBe(2)
      yield* Scope.close(scope, Exit.void)
      yield* Effect.sync(() => fake.openStreams(busyId) + fake.openStreams(idleId)).pipe(
        Effect.filterOrFail((open) => open === 0),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("2 seconds"))),
      )
    }),
  )
})

describe("Docker source on a fake Engine (cgroup v2 responses)", () => {
  const v2 = cgroupV2()

  it.scopedLive("memory without inactive_file, CPU against online_cpus, a quota of half a core", () =>
    Effect.gen(function* () {
      const fake = yield* engine(v2.info, [v2.api])
      const source = yield* make({ socketPath: fake.socketPath, nodeName: "worker-x", staleAfterMs: 60_000 })
      expect(source.nodeName).toBe("worker-x")
      fake.tick()
      const rows = yield* sampleUntil(
        source,
        (rows) => rows.get(idOf(v2.api))?.sampled_at === readMs(v2.api, 1),
      )
      const api = rows.get(idOf(v2.api))!
      expect(api.cpu_percent).toBeCloseTo(45, 9)
      expect(api.cpu_limit_cores).toBe(0.5)
      expect(api.cpu_percent_of_limit).toBeCloseTo(90, 9)
      expect(api.memory_mb).toBe(80)
      expect(api.memory_percent).toBe(15.625)
      expect(api.network_rx_mbps).toBeCloseTo(10, 9)
      expect(api.network_tx_mbps).toBeCloseTo(3, 9)
      expect(api).toMatchObject({ service_name: "api_api", task_slot: 1, networks: { ingress: "10.0.0.7" } })
    }),
  )
})

describe("Docker source: when it cannot start", () => {
  const tempDir = Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "sg-no-engine-"))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true })),
  )

  it.scopedLive("no socket: one line that names it", () =>
    Effect.gen(function* () {
      const path = join(yield* tempDir, "docker.sock")
      const error = yield* Effect.flip(make({ socketPath: path }))
      expect(error.reason).toBe(
        `no Docker Engine socket at ${path}: is dockerd running? (DOCKER_HOST selects another Engine)`,
      )
    }),
  )

  it.scopedLive("nothing listening on the socket", () =>
    Effect.gen(function* () {
      const path = join(yield* tempDir, "docker.sock")
      writeFileSync(path, "")
      const error = yield* Effect.flip(make({ socketPath: path }))
      expect(error.reason).toBe(`nothing accepts connections at unix://${path}: is dockerd running?`)
    }),
  )

  it.scopedLive("an Engine that never answers", () =>
    Effect.gen(function* () {
      const path = join(yield* tempDir, "docker.sock")
      const mute = createServer(() => undefined)
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          mute.listen(path, () => resume(Effect.void))
        }),
        () => Effect.sync(() => mute.close()),
      )
      const error = yield* Effect.flip(make({ socketPath: path, requestTimeoutMs: 200 }))
      expect(error.reason).toBe(
        `the Docker Engine at unix://${path} did not answer ping: no answer within 200 ms`,
      )
    }),
  )

  // Root may open any socket: the check runs in a child process as `nobody`, against a root-only socket.
  it.skipIf(process.getuid?.() !== 0)("no permission on the socket: one line that says so", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sg-root-only-"))
    const path = join(dir, "docker.sock")
    const server = createServer(() => undefined)
    try {
      await new Promise<void>((resolve) => server.listen(path, resolve))
      chmodSync(dir, 0o755)
      chmodSync(path, 0o600)
      const code = `
        const { Effect } = await import("effect")
        const { checkEngine } = await import(${JSON.stringify(new URL("../../agent/docker/source.ts", import.meta.url).pathname)})
        const error = await Effect.runPromise(Effect.flip(checkEngine({ socketPath: ${JSON.stringify(path)} })))
        process.stdout.write(error.reason)`
      const output = await new Promise<string>((resolve, reject) => {
        let out = ""
        const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
          uid: 65534,
          gid: 65534,
          stdio: ["ignore", "pipe", "inherit"],
        })
        child.stdout.on("data", (chunk) => {
          out += chunk
        })
        child.on("error", reject)
        child.on("exit", () => resolve(out))
      })
      expect(output).toBe(
        `permission denied on the Docker Engine socket ${path}: run the agent as root or in the docker group`,
      )
    } finally {
      server.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("permission denied, and the Engine refusing a request, read as one line each", () => {
    const socket = { socketPath: "/var/run/docker.sock" }
    expect(unavailableReason(socket, { what: "ping", code: "EACCES", status: undefined, detail: "" })).toBe(
      "permission denied on the Docker Engine socket /var/run/docker.sock: run the agent as root or in the docker group",
    )
    expect(
      unavailableReason(socket, { what: "list containers", code: undefined, status: 500, detail: "boom" }),
    ).toBe("the Docker Engine at unix:///var/run/docker.sock refused list containers (HTTP 500): boom")
  })

  it("DOCKER_HOST: unix sockets and plain TCP", () => {
    expect(connectionFromDockerHost(undefined)).toEqual(Either.right({ socketPath: "/var/run/docker.sock" }))
    expect(connectionFromDockerHost("unix:///run/user/1000/docker.sock")).toEqual(
      Either.right({ socketPath: "/run/user/1000/docker.sock" }),
    )
    expect(connectionFromDockerHost("tcp://127.0.0.1:2375")).toEqual(
      Either.right({ host: "127.0.0.1", port: 2375 }),
    )
    expect(connectionFromDockerHost("tcp://[::1]")).toEqual(Either.right({ host: "::1", port: 2375 }))
    expect(Either.isLeft(connectionFromDockerHost("ssh://user@host"))).toBe(true)
  })

  const agentLayer = (env: Record<string, string>) =>
    dockerLayer.pipe(
      Layer.provide(AgentConfig.layer),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))),
    )

  it.scopedLive("the layer reads DOCKER_HOST and NODE_NAME from the agent's configuration", () =>
    Effect.gen(function* () {
      const fake = yield* engine(v1.info, [v1.busy])
      const source = yield* Layer.build(
        agentLayer({ DOCKER_HOST: `unix://${fake.socketPath}`, NODE_NAME: "worker-9" }),
      ).pipe(Effect.map(Context.get(StatsSource)))
      expect(source.nodeName).toBe("worker-9")
      expect((yield* source.sample).map((row) => row.container_id)).toEqual([busyId])

      const invalid = yield* Effect.flip(Layer.build(agentLayer({ DOCKER_HOST: "ssh://host" })))
      expect(invalid).toMatchObject({ _tag: "ConfigInvalid", variable: "DOCKER_HOST", value: "ssh://host" })
    }),
  )
})
