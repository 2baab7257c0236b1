/** Lowest load score from the agents' metrics; round-robin where metrics are missing or stale. */
import { Layer } from "effect"
import { Selector } from "../../src/Selector.ts"
import { makeScoredSelector } from "./scored.ts"

export const layer = Layer.effect(
  Selector,
  makeScoredSelector({
    algorithm: "metrics",
    extraScore: () => 0,
    fallback: (_, start) => start,
  }),
)
