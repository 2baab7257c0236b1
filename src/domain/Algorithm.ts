/** The routing algorithms a balancer can run; one Selector layer implements each. */
import { Schema } from "effect"

export const Algorithm = Schema.Literal("lease", "metrics", "hybrid", "round-robin", "adaptive")
export type Algorithm = typeof Algorithm.Type

export const ALGORITHMS: ReadonlyArray<Algorithm> = Algorithm.literals
