/**
 * A real redis-server on 127.0.0.1 for the tests that share state through Redis: Debian's, installed
 * when missing, on a free port, with no persistence, so a restart comes back empty, as a crashed and
 * replaced Redis would. It can be killed outright (SIGKILL: no shutdown, its connections dropped at
 * once) and started again on the same port.
 */
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { type Child, startProgram } from "../../src/process/child.ts"
import { freePorts } from "../../src/process/ports.ts"
import { untilLogged } from "../../src/process/wait.ts"
import { ensureDebianPackage } from "./debian.ts"
import { waitFor } from "./wait.ts"

const HOST = "127.0.0.1"
const READY = /Ready to accept connections/
const START_TIMEOUT_MS = 10_000

export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:PORT`, as `RATE_LIMIT_REDIS_URL` takes it. */
  readonly url: string
  /** Whether a redis-server this helper started is running now. */
  readonly running: () => boolean
  /** Whether something on the port answers PING within a second. */
  readonly ping: () => Promise<boolean>
  /** SIGKILL, as a crash; resolves once the process is gone. Nothing when it is not running. */
  readonly kill: () => Promise<void>
  /** Starts it again on the same port; resolves once it answers PING. Nothing when it is running. */
  readonly restart: () => Promise<void>
  /** SIGTERM, SIGKILL after a second: for cleanup. */
  readonly stop: () => Promise<void>
}

/** One PING on a connection of its own, closed at once: true for `+PONG`. */
const ping = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: HOST, port })
    let received = ""
    const finish = (answered: boolean) => {
      socket.destroy()
      resolve(answered)
    }
    socket.setTimeout(1_000, () => finish(false))
    socket.once("error", () => finish(false))
    socket.once("close", () => finish(false))
    socket.setEncoding("latin1").on("data", (text: string) => {
      received += text
      if (received.includes("\r\n")) finish(received.startsWith("+PONG"))
    })
    socket.write("PING\r\n")
  })

/**
 * Starts redis-server on a free port of 127.0.0.1 and waits until it answers PING. The caller stops
 * it (`afterAll`/`onTestFinished`); children still running when the test process exits are killed.
 */
export const startRedis = async (): Promise<RedisServer> => {
  const command = await ensureDebianPackage("redis-server", "redis-server")
  const [port] = (await freePorts(HOST, 1)) as [number]
  // No RDB snapshot, no append-only file: nothing survives a restart and nothing is written in the
  // repository (`--dir` is where Redis would write, were it asked to).
  const args = ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", tmpdir()]

  const launch = async (): Promise<Child> => {
    const child = startProgram(`redis-server :${port}`, command, args, {})
    try {
      await untilLogged(child, READY, "accept connections", START_TIMEOUT_MS)
      await waitFor(`redis-server on ${HOST}:${port} to answer PING`, async () =>
        (await ping(port)) ? true : undefined,
      )
      return child
    } catch (error) {
      await child.stop(1_000)
      throw error
    }
  }

  let child: Child | undefined = await launch()
  const running = () =>
    child !== undefined && child.process.exitCode === null && child.process.signalCode === null

  return {
    port,
    url: `redis://${HOST}:${port}`,
    running,
    ping: () => ping(port),
    kill: async () => {
      if (child === undefined) return
      const dying = child
      child = undefined
      dying.signal("SIGKILL")
      await dying.exited
    },
    restart: async () => {
      if (running()) return
      // The port was ours a moment ago; another socket could hold it briefly: retry, but not forever.
      child = await waitFor(`redis-server to listen again on ${HOST}:${port}`, launch, {
        timeoutMs: START_TIMEOUT_MS,
        intervalMs: 100,
      })
    },
    stop: async () => {
      if (child === undefined) return
      const stopping = child
      child = undefined
      await stopping.stop(1_000)
    },
  }
}
