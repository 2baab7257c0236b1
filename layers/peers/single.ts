/** Peers of a balancer that is one process: the only part of a view is its own. */
import { Layer } from "effect"
import { Peers } from "../../src/Peers.ts"

export const layer = Layer.sync(Peers, () => {
  const parts = new Map<string, () => unknown>()
  return {
    serve: (view, part) => {
      parts.set(view, part)
    },
    gather: async (view) => {
      const part = parts.get(view)
      return part === undefined ? [] : [{ worker: 0, value: await part() }]
    },
  }
})
