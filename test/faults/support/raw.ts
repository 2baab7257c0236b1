/** Raw TCP clients that send what no HTTP library would: malformed heads, conflicting framing, trickles. */
import { connect } from "node:net"
import { setTimeout as sleep } from "node:timers/promises"

export interface RawAnswer {
  /** Everything the balancer sent, as latin1 text. */
  readonly received: string
  /** The status line's code, 0 when none came. */
  readonly status: number
  /** ms from connecting to the first byte of the answer, and to the connection's close. */
  readonly answeredAfterMs: number
  readonly closedAfterMs: number
  /** Whether the balancer closed the connection (rather than the test giving up on it). */
  readonly closedByPeer: boolean
}

const statusOf = (received: string): number => {
  const match = /^HTTP\/1\.[01] (\d{3}) /.exec(received)
  return match ? Number(match[1]) : 0
}

/**
 * Connects to 127.0.0.1:`port`, writes `chunks` one after another `gapMs` apart (stopping once an answer
 * or a close arrives), and collects the answer until the balancer closes the connection. A reset after
 * the answer (the balancer closing on unread bytes) still counts as closed by the peer. Gives up, and
 * destroys the socket, after `timeoutMs`.
 */
export const rawExchange = (
  port: number,
  chunks: ReadonlyArray<string | Buffer>,
  { gapMs = 0, timeoutMs = 10_000 }: { readonly gapMs?: number; readonly timeoutMs?: number } = {},
): Promise<RawAnswer> =>
  new Promise((resolve) => {
    const startedAt = performance.now()
    const socket = connect({ host: "127.0.0.1", port })
    let received = ""
    let answeredAt = Number.NaN
    let closed = false
    let timedOut = false
    socket.setEncoding("latin1")
    socket.on("data", (text: string) => {
      if (received === "") answeredAt = performance.now()
      received += text
    })
    // Errors (EPIPE, ECONNRESET) end the exchange like a close; what arrived before them is kept.
    socket.on("error", () => {})
    const timer = setTimeout(() => {
      timedOut = true
      socket.destroy()
    }, timeoutMs)
    socket.on("close", () => {
      closed = true
      clearTimeout(timer)
      const now = performance.now()
      resolve({
        received,
        status: statusOf(received),
        answeredAfterMs: answeredAt - startedAt,
        closedAfterMs: now - startedAt,
        closedByPeer: !timedOut,
      })
    })
    socket.once("connect", async () => {
      for (const chunk of chunks) {
        if (closed || received !== "") return
        socket.write(chunk)
        if (gapMs > 0) await sleep(gapMs)
      }
    })
  })
