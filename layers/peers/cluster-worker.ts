/**
 * Peers of a balancer that is one of several worker processes (`LB_WORKERS` > 1): parts travel over
 * the cluster's IPC channel, relayed by the primary process (src/workers/primary.ts).
 */
import cluster from "node:cluster"
import { Effect, Layer } from "effect"
import { Peers } from "../../src/Peers.ts"
import {
  CHANNEL,
  GATHER_TIMEOUT_MS,
  isOnChannel,
  type PrimaryMessage,
  type WorkerMessage,
} from "../../src/workers/messages.ts"

const send = (message: WorkerMessage) => process.send?.(message)

export const layer = Layer.scoped(
  Peers,
  Effect.gen(function* () {
    const worker = cluster.worker?.id ?? 0
    const parts = new Map<string, () => unknown>()
    const waiting = new Map<number, (parts: ReadonlyArray<{ worker: number; value: unknown }>) => void>()
    let nextId = 0

    const onMessage = (message: unknown) => {
      if (!isOnChannel<PrimaryMessage>(message)) return
      if (message.kind === "gathered") {
        waiting.get(message.id)?.(message.parts)
        waiting.delete(message.id)
        return
      }
      const part = parts.get(message.view)
      // A part that cannot be read is left out of the view, not a reason to fail it.
      Promise.resolve()
        .then(() => part?.())
        .then(
          (value) => send({ channel: CHANNEL, kind: "part", id: message.id, value }),
          () => send({ channel: CHANNEL, kind: "part", id: message.id, value: undefined }),
        )
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("message", onMessage)),
      () => Effect.sync(() => process.off("message", onMessage)),
    )

    const own = async (view: string) => {
      const part = parts.get(view)
      return part === undefined ? [] : [{ worker, value: await part() }]
    }

    return {
      serve: (view, part) => {
        parts.set(view, part)
      },
      gather: (view) =>
        new Promise((resolve) => {
          const id = nextId++
          // Without the primary's answer the view still answers, for this worker alone.
          const timer = setTimeout(() => {
            waiting.delete(id)
            resolve(own(view))
          }, 2 * GATHER_TIMEOUT_MS)
          waiting.set(id, (gathered) => {
            clearTimeout(timer)
            resolve(gathered)
          })
          send({ channel: CHANNEL, kind: "gather", id, view })
        }),
    }
  }),
)
