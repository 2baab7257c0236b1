/**
 * A well-behaved client that keeps asking the balancer for `/whoami` on its own keep-alive connection
 * while a test misbehaves on others: it must get a 200 every time.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { Client } from "undici"

export interface BystanderReport {
  readonly requests: number
  readonly ok: number
  /** What went wrong with the others (status or error), the first few. */
  readonly failures: ReadonlyArray<string>
}

export interface Bystander {
  /** Stops after the request in flight and reports. */
  readonly stop: () => Promise<BystanderReport>
}

/** Starts now; one request every `intervalMs`, each allowed 5 s; ends by itself after `maxMs`. */
export const startBystander = (lb: string, { intervalMs = 10, maxMs = 60_000 } = {}): Bystander => {
  const client = new Client(lb, { headersTimeout: 5_000, bodyTimeout: 5_000 })
  const deadline = performance.now() + maxMs
  let stopped = false
  let requests = 0
  let ok = 0
  const failures: Array<string> = []
  const loop = (async () => {
    while (!stopped && performance.now() < deadline) {
      requests++
      try {
        const { statusCode, body } = await client.request({ path: "/whoami", method: "GET" })
        await body.arrayBuffer()
        if (statusCode === 200) ok++
        else failures.push(`status ${statusCode}`)
      } catch (error) {
        failures.push(String(error))
      }
      await sleep(intervalMs)
    }
  })()
  return {
    stop: async () => {
      stopped = true
      await loop
      await client.close()
      return { requests, ok, failures: failures.slice(0, 5) }
    },
  }
}

export const describeBystander = (report: BystanderReport): string =>
  `bystander ${report.ok} of ${report.requests} 200s`
