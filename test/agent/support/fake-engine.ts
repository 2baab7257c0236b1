/**
 * A fake Docker Engine on a unix socket, serving recorded Engine responses, so the Docker source's real
 * dockerode code runs against it. Stats streams behave like dockerd's: a frame when a stream opens
 * (with empty `precpu_stats`, as a stream's first frame has), then one per `tick()`. Faults are
 * scriptable: a container that vanished (listed, then 404), a slow one (its stats request never
 * answers), the Engine going away and coming back on the same socket.
 */
import { readFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

type Json = Record<string, unknown>

export interface FakeContainer {
  /** Its entry in `GET /containers/json`. */
  readonly summary: Json
  /** `GET /containers/{id}/json`. */
  readonly inspect: Json
  /** The stats frames it goes through, one per tick. */
  readonly frames: ReadonlyArray<Json>
}

const fixtureDir = new URL("../fixtures/", import.meta.url)

export const fixture = <A = Json>(path: string): A =>
  JSON.parse(readFileSync(new URL(path, fixtureDir), "utf8")) as A

/** The recorded cgroup v1 Engine: a busy Swarm-labelled container and an idle Compose one. */
export const cgroupV1 = () => {
  const [busy, idle] = fixture<Array<Json>>("cgroup-v1/containers.json")
  return {
    info: fixture("cgroup-v1/info.json"),
    busy: {
      summary: busy!,
      inspect: fixture("cgroup-v1/inspect-busy.json"),
      frames: fixture<Array<Json>>("cgroup-v1/stats-busy.json"),
    } satisfies FakeContainer,
    idle: {
      summary: idle!,
      inspect: fixture("cgroup-v1/inspect-idle.json"),
      frames: fixture<Array<Json>>("cgroup-v1/stats-idle.json"),
    } satisfies FakeContainer,
  }
}

/** The hand-written cgroup v2 Engine (after the Engine API reference): one quota-limited Swarm task. */
export const cgroupV2 = () => {
  const [api] = fixture<Array<Json>>("cgroup-v2/containers.json")
  return {
    info: fixture("cgroup-v2/info.json"),
    api: {
      summary: api!,
      inspect: fixture("cgroup-v2/inspect.json"),
      frames: fixture<Array<Json>>("cgroup-v2/stats.json"),
    } satisfies FakeContainer,
  }
}

const emptyCpu = {
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
}

interface State {
  readonly container: FakeContainer
  /** Index of the frame the Engine's collector is at. */
  cursor: number
  listed: boolean
  vanished: boolean
  slow: boolean
  readonly streams: Set<ServerResponse>
  streamOpens: number
}

export interface FakeEngine {
  readonly socketPath: string
  /** Requests served, as `METHOD /path` without the query, counted. */
  readonly requests: Map<string, number>
  /** Moves every container to its next frame and sends it on their open streams. */
  readonly tick: () => void
  /** Listed still (the list was taken before), but gone: inspect and stats answer 404, streams end. */
  readonly vanish: (id: string) => void
  /** Gone from the list too: stopped and removed. */
  readonly remove: (id: string) => void
  /** Its stats requests get no answer (nor headers) until `slow(id, false)`; open streams go quiet. */
  readonly slow: (id: string, slow: boolean) => void
  /** Stats requests answered so far, and how many of those streams are still open. */
  readonly streamOpens: (id: string) => number
  readonly openStreams: (id: string) => number
  /** The Engine goes away: connections dropped, socket removed. */
  readonly stop: () => Promise<void>
  /** The Engine comes back on the same socket. */
  readonly start: () => Promise<void>
  readonly close: () => Promise<void>
}

const idOf = (container: FakeContainer) => container.summary.Id as string

export const startFakeEngine = async (
  info: Json,
  containers: ReadonlyArray<FakeContainer>,
): Promise<FakeEngine> => {
  const dir = await mkdtemp(join(tmpdir(), "sg-fake-engine-"))
  const socketPath = join(dir, "docker.sock")
  const states = new Map<string, State>(
    containers.map((container) => [
      idOf(container),
      {
        container,
        cursor: 0,
        listed: true,
        vanished: false,
        slow: false,
        streams: new Set(),
        streamOpens: 0,
      },
    ]),
  )
  const requests = new Map<string, number>()
  const sockets = new Set<Socket>()
  let server: Server | undefined

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" })
    res.end(JSON.stringify(body))
  }
  const noSuchContainer = (res: ServerResponse, id: string) =>
    json(res, 404, { message: `No such container: ${id}` })

  const frameFor = (state: State, first: boolean) => {
    const frame = state.container.frames[state.cursor]!
    return first ? { ...frame, precpu_stats: emptyCpu, preread: "0001-01-01T00:00:00Z" } : frame
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://engine")
    // dockerode may prefix a version (`/v1.41/...`); the Engine serves both.
    const path = url.pathname.replace(/^\/v\d+\.\d+/, "")
    const key = `${req.method} ${path}`
    requests.set(key, (requests.get(key) ?? 0) + 1)
    if (path === "/_ping") {
      res.writeHead(200, { "content-type": "text/plain", "api-version": "1.41" })
      res.end("OK")
      return
    }
    if (path === "/info") return json(res, 200, info)
    if (path === "/containers/json") {
      return json(
        res,
        200,
        [...states.values()].filter((state) => state.listed).map((state) => state.container.summary),
      )
    }
    const match = /^\/containers\/([^/]+)\/(json|stats)$/.exec(path)
    const state = match === null ? undefined : states.get(match[1]!)
    if (match === null) return json(res, 404, { message: "page not found" })
    if (state === undefined || state.vanished) return noSuchContainer(res, match[1]!)
    if (match[2] === "json") return json(res, 200, state.container.inspect)
    if (state.slow) return // never answered: the client's own timeout or interruption ends it
    state.streamOpens++
    if (url.searchParams.get("stream") === "false" || url.searchParams.get("stream") === "0") {
      return json(res, 200, frameFor(state, true))
    }
    res.writeHead(200, { "content-type": "application/json" })
    res.write(`${JSON.stringify(frameFor(state, true))}\n`)
    state.streams.add(res)
    res.on("close", () => state.streams.delete(res))
  }

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const next = createServer(handle)
      next.on("connection", (socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
      next.once("error", reject)
      next.listen(socketPath, () => {
        server = next
        resolve()
      })
    })

  const stop = () =>
    new Promise<void>((resolve) => {
      const current = server
      server = undefined
      if (current === undefined) return resolve()
      for (const state of states.values()) state.streams.clear()
      current.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })

  await start()
  return {
    socketPath,
    requests,
    tick: () => {
      for (const state of states.values()) {
        if (state.cursor >= state.container.frames.length - 1) continue
        state.cursor++
        if (state.slow) continue
        for (const stream of state.streams) stream.write(`${JSON.stringify(frameFor(state, false))}\n`)
      }
    },
    vanish: (id) => {
      const state = states.get(id)!
      state.vanished = true
      for (const stream of state.streams) stream.end()
    },
    remove: (id) => {
      const state = states.get(id)!
      state.listed = false
      state.vanished = true
      for (const stream of state.streams) stream.end()
    },
    slow: (id, slow) => {
      states.get(id)!.slow = slow
    },
    streamOpens: (id) => states.get(id)!.streamOpens,
    openStreams: (id) => states.get(id)!.streams.size,
    stop,
    start,
    close: async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
