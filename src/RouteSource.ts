/**
 * Where the routes come from: the environment's one route (`TARGET_SERVICE` or `REPLICAS`) or a
 * routes file (`LB_ROUTES_FILE`). A source gives the set in force at start, which must be whole for
 * the balancer to start, and then each later version as a whole set, or why that version was refused.
 */
import { Context, type Either, type Stream } from "effect"
import type { RouteSpec } from "./routes/route-spec.ts"

export interface RouteSet {
  readonly routes: ReadonlyArray<RouteSpec>
  /** Where they were read, for the views: `environment`, `file /etc/swarmguard/routes.yml`. */
  readonly source: string
}

/** A version of the routes that cannot be used, in one line; the last good set stays in force. */
export interface RoutesRefused {
  readonly message: string
}

export interface RouteSourceShape {
  readonly initial: RouteSet
  /** Every change after start, in order; a source that never changes gives an empty stream. */
  readonly changes: Stream.Stream<Either.Either<RouteSet, RoutesRefused>>
}

export class RouteSource extends Context.Tag("swarmguard/RouteSource")<RouteSource, RouteSourceShape>() {}
