/**
 * A route from a Swarm service's labels, as Traefik's Swarm provider reads them: a service labelled
 * `swarmguard.enable=true` is routed by `swarmguard.rule` to its own tasks, with the other
 * `swarmguard.*` labels as the route's settings. The labels are decoded by the same Schema as a routes
 * file's entries, so a label and a file key mean the same and fail the same way.
 */
import { Either, Schema } from "effect"
import {
  describeRouteProblem,
  mostSpecificIssue,
  RouteInput,
  type RouteProblem,
  type RouteSpec,
  routeSpecOf,
} from "./route-spec.ts"

export const LABEL_PREFIX = "swarmguard."
export const ENABLE_LABEL = `${LABEL_PREFIX}enable`

/** Labels whose values are numbers in the route's shape. */
const NUMERIC = new Set([
  "priority",
  "weight",
  "port",
  "max-requests",
  "queue-size",
  "queue-timeout",
  "rate-limit-burst",
])

/** The keys a label may set: every key of a routes file's entry but those the service itself gives. */
const LABEL_KEYS = new Set(
  Object.keys(RouteInput.fields).filter((key) => key !== "name" && key !== "service" && key !== "replicas"),
)

const decodeInput = Schema.decodeUnknownEither(RouteInput, { onExcessProperty: "error" })

/**
 * The route of service `service` from its labels; undefined when it is not enabled. Its name is the
 * service's, and it balances the service's tasks.
 */
export const routeOfLabels = (
  service: string,
  labels: Readonly<Record<string, string>>,
): Either.Either<RouteSpec, RouteProblem> | undefined => {
  if (labels[ENABLE_LABEL]?.trim().toLowerCase() !== "true") return undefined
  const problem = (key: string, message: string) =>
    Either.left<RouteProblem>({ route: service, key: `${LABEL_PREFIX}${key}`, message })
  const input: Record<string, unknown> = { name: service, service }
  for (const [label, raw] of Object.entries(labels)) {
    if (!label.startsWith(LABEL_PREFIX) || label === ENABLE_LABEL) continue
    const key = label.slice(LABEL_PREFIX.length)
    if (!LABEL_KEYS.has(key))
      return problem(key, `is not a label SwarmGuard reads (${[...LABEL_KEYS].join(", ")})`)
    const value = raw.trim()
    if (!NUMERIC.has(key)) input[key] = value
    else if (value !== "" && Number.isFinite(Number(value))) input[key] = Number(value)
    else return problem(key, `expected a number, got ${JSON.stringify(raw)}`)
  }
  if (input.rule === undefined) return problem("rule", "is missing: which requests go to this service?")
  const decoded = decodeInput(input)
  if (Either.isLeft(decoded)) {
    const { path, message } = mostSpecificIssue(decoded.left)
    return problem(String(path[0] ?? "rule"), message)
  }
  return Either.mapLeft(routeSpecOf(decoded.right), (found) => ({
    ...found,
    key: `${LABEL_PREFIX}${found.key}`,
  }))
}

/** One line for a service whose labels cannot be used. */
export const describeLabelProblem = (problem: RouteProblem): string =>
  `service labels: ${describeRouteProblem(problem)}`
