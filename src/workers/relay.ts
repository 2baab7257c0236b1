/**
 * The primary's side of gathering a view (src/Peers.ts): asks every live worker for its part and
 * hands the parts to the worker that asked. A worker that exits or stays silent is left out once
 * the others have answered or GATHER_TIMEOUT_MS has passed.
 */
import cluster, { type Worker } from "node:cluster"
import type { Part } from "../Peers.ts"
import {
  CHANNEL,
  GATHER_TIMEOUT_MS,
  isOnChannel,
  type PrimaryMessage,
  type WorkerMessage,
} from "./messages.ts"

interface Gathering {
  readonly requester: Worker
  /** The id the requester gave; the relay numbers gatherings its own way, as requesters may clash. */
  readonly requestId: number
  readonly waiting: Set<number>
  readonly parts: Array<Part>
  readonly timer: NodeJS.Timeout
}

const sendTo = (worker: Worker, message: PrimaryMessage) => {
  if (worker.isConnected()) worker.send(message)
}

export const makeRelay = () => {
  const gatherings = new Map<number, Gathering>()
  let nextId = 0

  const finish = (id: number) => {
    const gathering = gatherings.get(id)
    if (gathering === undefined) return
    gatherings.delete(id)
    clearTimeout(gathering.timer)
    const parts = gathering.parts.sort((a, b) => a.worker - b.worker)
    sendTo(gathering.requester, { channel: CHANNEL, kind: "gathered", id: gathering.requestId, parts })
  }

  const onMessage = (worker: Worker, message: unknown) => {
    if (!isOnChannel<WorkerMessage>(message)) return
    if (message.kind === "gather") {
      const id = nextId++
      const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true)
      gatherings.set(id, {
        requester: worker,
        requestId: message.id,
        waiting: new Set(live.map((w) => w.id)),
        parts: [],
        timer: setTimeout(() => finish(id), GATHER_TIMEOUT_MS),
      })
      for (const w of live) sendTo(w, { channel: CHANNEL, kind: "serve", id, view: message.view })
      return
    }
    const gathering = gatherings.get(message.id)
    if (gathering === undefined) return
    if (message.value !== undefined) gathering.parts.push({ worker: worker.id, value: message.value })
    gathering.waiting.delete(worker.id)
    if (gathering.waiting.size === 0) finish(message.id)
  }

  const onExit = (worker: Worker) => {
    for (const [id, gathering] of gatherings) {
      gathering.waiting.delete(worker.id)
      if (gathering.waiting.size === 0) finish(id)
    }
  }

  return { onMessage, onExit }
}
