/**
 * Which route a request takes: the routes in order of priority, highest first (equal priorities in
 * the order they were given), and the first whose rule matches. Built once per set of routes, with
 * the routes that can match each host listed apart, so a request is tried only against the routes
 * of its host and those of any host.
 */
import type { RequestFacts } from "./rule-match.ts"

export interface Matchable {
  readonly priority: number
  readonly matches: (request: RequestFacts) => boolean
  /** One of these must be the request's host for the route to match; undefined: any host. */
  readonly hosts: ReadonlySet<string> | undefined
  /** It matches every request. */
  readonly catchAll?: boolean
}

export interface RouteMatcher<R extends Matchable> {
  /** The routes in the order they are tried. */
  readonly ordered: ReadonlyArray<R>
  /** The route every request takes, when the first route tried matches everything; else undefined. */
  readonly always: R | undefined
  readonly match: (request: RequestFacts) => R | undefined
}

export const makeRouteMatcher = <R extends Matchable>(routes: ReadonlyArray<R>): RouteMatcher<R> => {
  // Array.prototype.sort is stable: equal priorities keep the order given.
  const ordered = [...routes].sort((a, b) => b.priority - a.priority)
  const anyHost = ordered.filter((route) => route.hosts === undefined)
  const byHost = new Map<string, ReadonlyArray<R>>()
  for (const route of ordered) {
    for (const host of route.hosts ?? []) {
      if (byHost.has(host)) continue
      byHost.set(
        host,
        ordered.filter((candidate) => candidate.hosts === undefined || candidate.hosts.has(host)),
      )
    }
  }
  const match = (request: RequestFacts): R | undefined => {
    for (const route of byHost.get(request.host) ?? anyHost) if (route.matches(request)) return route
    return undefined
  }
  const first = ordered[0]
  const always = first?.catchAll === true && first.hosts === undefined ? first : undefined
  return { ordered, always, match }
}
