/**
 * The primary process of a balancer with `LB_WORKERS` > 1. It holds the listening socket (Node's
 * cluster hands each accepted connection to a worker in turn) and serves nothing itself: it starts
 * the workers, starts another when one dies, relays the views' parts between them, and on SIGTERM
 * has every worker drain before it exits.
 *
 * The first worker starts alone. Until it listens, a failure is the configuration's (a routes file
 * that does not parse, a port in use): the worker has printed its one line, and the primary exits
 * with the worker's code instead of starting more workers that would fail the same way.
 */
import cluster, { type Worker } from "node:cluster"
import { Duration, Effect, FiberSet, Layer } from "effect"
import { LbConfig } from "../Config.ts"
import { makeRelay } from "./relay.ts"

/** A worker that dies this soon after it started is restarted only after RESTART_DELAY. */
const EARLY_DEATH = Duration.seconds(5)
const RESTART_DELAY = Duration.seconds(1)
/** Past the workers' own drain deadline, how long they get to exit before they are killed. */
const EXIT_GRACE = Duration.seconds(5)

const exitOf = (worker: Worker) =>
  Effect.async<{ readonly code: number | null; readonly signal: string | null }>((resume) => {
    worker.once("exit", (code, signal) => resume(Effect.succeed({ code, signal })))
  })

const listeningOf = (worker: Worker) =>
  Effect.async<void>((resume) => {
    worker.once("listening", () => resume(Effect.void))
  })

export const primaryLayer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const config = yield* LbConfig
    const run = yield* FiberSet.makeRuntime<never>()
    const relay = makeRelay()
    cluster.on("message", relay.onMessage)
    cluster.on("exit", relay.onExit)

    const first = cluster.fork()
    const firstOutcome = yield* Effect.raceFirst(
      Effect.as(listeningOf(first), undefined),
      exitOf(first).pipe(Effect.map(({ code }) => code ?? 1)),
    )
    if (firstOutcome !== undefined) {
      return yield* Effect.sync(() => process.exit(firstOutcome))
    }

    let stopping = false
    const started = new Map<number, number>([[first.id, Date.now()]])
    const start = () => {
      const worker = cluster.fork()
      started.set(worker.id, Date.now())
    }
    cluster.on("exit", (worker, code, signal) => {
      const lived = Date.now() - (started.get(worker.id) ?? 0)
      started.delete(worker.id)
      if (stopping) return
      const delay = lived < Duration.toMillis(EARLY_DEATH) ? RESTART_DELAY : Duration.zero
      run(
        Effect.logError("a worker exited; starting another").pipe(
          Effect.annotateLogs({ worker: worker.id, code, signal, lived_ms: lived }),
          Effect.zipRight(Effect.sleep(delay)),
          Effect.zipRight(Effect.sync(() => stopping || start())),
        ),
      )
    })
    for (let i = 1; i < config.workers; i++) start()
    yield* Effect.logInfo("load balancer workers started").pipe(
      Effect.annotateLogs({ workers: config.workers, primary_pid: process.pid }),
    )

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        stopping = true
        const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
        yield* Effect.logInfo("draining the workers").pipe(Effect.annotateLogs({ workers: workers.length }))
        // Listening before the signals go out: an exit cannot slip between the two.
        const exits = workers.map((worker) =>
          worker.isDead() ? Promise.resolve() : new Promise((resolve) => worker.once("exit", resolve)),
        )
        for (const worker of workers) worker.process.kill("SIGTERM")
        const deadline = Duration.sum(Duration.millis(config.drainTimeoutMs), EXIT_GRACE)
        const inTime = yield* Effect.timeoutTo(
          Effect.promise(() => Promise.all(exits)),
          {
            duration: deadline,
            onSuccess: () => true,
            onTimeout: () => false,
          },
        )
        if (!inTime) {
          yield* Effect.logWarning("workers still running past the drain deadline: killed")
          for (const worker of workers) if (!worker.isDead()) worker.process.kill("SIGKILL")
        }
      }),
    )
  }),
)
