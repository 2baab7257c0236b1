/** No affinity: every request is the selector's to place. */
import { Layer } from "effect"
import { Affinity } from "../../src/Affinity.ts"

export const layer = Layer.succeed(Affinity, {
  keyOf: () => undefined,
  pick: () => undefined,
  setCookie: () => undefined,
})
