/**
 * Which route a request takes: the routes in order of priority, highest first (equal priorities in
 * the order they were given), and the first whose rule matches. Built once per set of routes.
 */
import type { RequestFacts } from "./rule-match.ts"

export interface Matchable {
  readonly priority: number
  readonly matches: (request: RequestFacts) => boolean
}

export interface RouteMatcher<R extends Matchable> {
  /** The routes in the order they are tried. */
  readonly ordered: ReadonlyArray<R>
  readonly match: (request: RequestFacts) => R | undefined
}

export const makeRouteMatcher = <R extends Matchable>(routes: ReadonlyArray<R>): RouteMatcher<R> => {
  // Array.prototype.sort is stable: equal priorities keep the order given.
  const ordered = [...routes].sort((a, b) => b.priority - a.priority)
  const match = (request: RequestFacts): R | undefined => {
    for (const route of ordered) if (route.matches(request)) return route
    return undefined
  }
  return { ordered, match }
}
