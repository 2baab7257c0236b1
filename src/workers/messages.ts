/**
 * What the primary process and its workers say to each other over the cluster's IPC channel, to
 * gather a view's parts. The primary relays: a worker asks it to gather, it asks every live worker
 * for its part, and hands the parts back to the worker that asked.
 */
import type { Part } from "../Peers.ts"

/** Tells these messages apart from anything else on the channel (prom-client's, Node's own). */
export const CHANNEL = "swarmguard/peers"

export type WorkerMessage =
  | { readonly channel: typeof CHANNEL; readonly kind: "gather"; readonly id: number; readonly view: string }
  | { readonly channel: typeof CHANNEL; readonly kind: "part"; readonly id: number; readonly value: unknown }

export type PrimaryMessage =
  | { readonly channel: typeof CHANNEL; readonly kind: "serve"; readonly id: number; readonly view: string }
  | {
      readonly channel: typeof CHANNEL
      readonly kind: "gathered"
      readonly id: number
      readonly parts: ReadonlyArray<Part>
    }

export const isOnChannel = <M extends { readonly channel: string }>(message: unknown): message is M =>
  typeof message === "object" && message !== null && (message as { channel?: unknown }).channel === CHANNEL

/** How long the primary waits for the workers' parts, and a worker for the primary's answer. */
export const GATHER_TIMEOUT_MS = 1_000
