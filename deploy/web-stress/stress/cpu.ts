/** CPU stress: worker threads that each keep one core busy for a set share of every 100 ms slice. */
import { Worker } from "node:worker_threads"

/**
 * The burner's code, evaluated as a script rather than loaded from a .ts file: it then runs the same
 * under tsx, in a container or from compiled output, with no module loader in the worker.
 *
 * Its duty (busy share of each slice, in 1/10000) lives in shared memory, so a change reaches it
 * without a message queue it would have to stop burning to read; a negative duty ends it.
 */
const BURNER = `
const { workerData } = require("node:worker_threads")
const duty = new Int32Array(workerData)
const SLICE_MS = 100
let sink = 1
for (;;) {
  const share = Atomics.load(duty, 0)
  if (share < 0) break
  const start = performance.now()
  const busyUntil = start + (SLICE_MS * share) / 10000
  while (performance.now() < busyUntil) {
    for (let i = 0; i < 2000; i++) sink = (sink * 1103515245 + 12345) % 2147483648
  }
  const rest = start + SLICE_MS - performance.now()
  // Sleeps the rest of the slice, or until the duty changes (the owner notifies).
  if (rest > 0) Atomics.wait(duty, 0, share, rest)
}
`

interface Burner {
  readonly worker: Worker
  readonly duty: Int32Array
}

export class CpuBurners {
  private readonly burners: Array<Burner> = []
  private percent = 0

  /** @param maxPercent the most that is ever burnt, whatever is asked: 100 per core of this machine. */
  constructor(private readonly maxPercent: number) {}

  /** Spreads `percent` (of one core) evenly over ceil(percent / 100) workers. */
  setPercent(requested: number): void {
    const percent = Math.min(Math.max(requested, 0), this.maxPercent)
    this.percent = percent
    const count = Math.ceil(percent / 100 - 1e-9)
    while (this.burners.length > count) this.retire(this.burners.pop()!)
    while (this.burners.length < count) this.burners.push(this.spawn())
    const share = count === 0 ? 0 : Math.round((percent / count) * 100)
    for (const { duty } of this.burners) {
      if (Atomics.load(duty, 0) === share) continue
      Atomics.store(duty, 0, share)
      Atomics.notify(duty, 0)
    }
  }

  status(): { readonly cpu_percent: number; readonly cpu_workers: number } {
    return { cpu_percent: round(this.percent), cpu_workers: this.burners.length }
  }

  /** Ends every worker; resolves once they have all exited. */
  async close(): Promise<void> {
    const burners = this.burners.splice(0)
    this.percent = 0
    await Promise.all(burners.map((burner) => this.retire(burner)))
  }

  private spawn(): Burner {
    const shared = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)
    const worker = new Worker(BURNER, { eval: true, workerData: shared, stdout: false, stderr: false })
    // A burner that dies is simply not burning: stress is best effort and must not take the server down.
    worker.on("error", () => {})
    // Burners must never keep a shutting-down process alive.
    worker.unref()
    return { worker, duty: new Int32Array(shared) }
  }

  private retire({ worker, duty }: Burner): Promise<number> {
    Atomics.store(duty, 0, -1)
    Atomics.notify(duty, 0)
    return worker.terminate()
  }
}

const round = (value: number) => Math.round(value * 100) / 100
