/** `LB_WORKERS`: how many processes serve the balancer's port. */
import { availableParallelism } from "node:os"
import { Schema } from "effect"
import type { VariableType } from "../env.ts"

const MAX_WORKERS = 256

export const workerCount: VariableType<number> = {
  schema: Schema.transform(
    Schema.Union(
      Schema.Literal("auto"),
      Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, MAX_WORKERS)),
    ),
    Schema.Number,
    {
      strict: true,
      // The cores this process may run on (its CPU affinity), as libuv counts them.
      decode: (given) => (given === "auto" ? availableParallelism() : given),
      encode: (count) => count,
    },
  ),
  expected: `a whole number of processes from 1 to ${MAX_WORKERS}, or auto (one per core this process may use)`,
}
