/** Bounded polling: integration tests wait on real sockets, but never without a deadline. */
import { setTimeout as sleep } from "node:timers/promises"

export interface WaitOptions {
  readonly timeoutMs?: number
  readonly intervalMs?: number
}

/**
 * Calls `probe` until it returns something other than undefined; fails after `timeoutMs` with `what`
 * and the last value or error seen, so a timeout says what was still wrong.
 */
export const waitFor = async <A>(
  what: string,
  probe: () => Promise<A | undefined> | A | undefined,
  { timeoutMs = 10_000, intervalMs = 50 }: WaitOptions = {},
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
      last = undefined
    } catch (error) {
      last = error
    }
    if (Date.now() >= deadline) {
      const detail = last === undefined ? "" : ` (last error: ${String(last)})`
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`)
    }
    await sleep(intervalMs)
  }
}

/** Rejects with `what` when `promise` has not settled within `timeoutMs`. */
export const within = <A>(what: string, timeoutMs: number, promise: Promise<A>): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
