/**
 * Keep-alive traffic for tests that count where thousands of requests went: `concurrency` requests in
 * flight over one undici pool, each answer's `x-replica` counted, any status but the expected one kept.
 */
import { Pool } from "undici"

export interface Tally {
  readonly shares: Record<string, number>
  /** Answers whose status was not 200, with the first bytes of their bodies. */
  readonly failures: ReadonlyArray<string>
}

export interface LoadOptions {
  readonly requests: number
  readonly concurrency: number
  readonly path?: string
  readonly headers?: Record<string, string>
  /** Stop early (the load ends when the current requests finish). */
  readonly until?: () => boolean
}

export const drive = async (origin: string, options: LoadOptions): Promise<Tally> => {
  const pool = new Pool(origin, { connections: options.concurrency })
  const shares: Record<string, number> = {}
  const failures: Array<string> = []
  let sent = 0
  const worker = async () => {
    while (sent < options.requests && !(options.until?.() ?? false)) {
      sent++
      try {
        const { statusCode, headers, body } = await pool.request({
          path: options.path ?? "/whoami",
          method: "GET",
          headers: options.headers ?? {},
        })
        const text = await body.text()
        if (statusCode !== 200) failures.push(`${statusCode} ${text.slice(0, 200)}`)
        const replica = String(headers["x-replica"])
        shares[replica] = (shares[replica] ?? 0) + 1
      } catch (error) {
        failures.push(String(error))
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker))
  } finally {
    await pool.close()
  }
  return { shares, failures }
}
