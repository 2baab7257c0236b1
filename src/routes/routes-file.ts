/**
 * The routes file (`LB_ROUTES_FILE`), YAML or JSON: `routes:` and a list of routes. Decoding yields
 * every route or one line saying which route, which key and what is wrong; a key the format does not
 * have is an error too, since a misspelt setting silently ignored is a route that does not do what
 * its author thinks.
 */
import { Data, Either, Schema } from "effect"
import { parse as parseYaml } from "yaml"
import {
  describeRouteProblem,
  mostSpecificIssue,
  RouteInput,
  type RouteSpec,
  routeSpecOf,
} from "./route-spec.ts"

export class RoutesFileInvalid extends Data.TaggedError("RoutesFileInvalid")<{
  readonly file: string
  /** One line: which route, which key, what is wrong. */
  readonly reason: string
}> {
  override get message() {
    return `routes file ${this.file}: ${this.reason}`
  }
}

const RoutesFile = Schema.Struct({
  routes: Schema.Array(RouteInput).annotations({ message: () => "expected a list of routes" }),
})
const decodeRoutesFile = Schema.decodeUnknownEither(RoutesFile, { onExcessProperty: "error" })

/** `route api` when the entry has a usable name, else its position. */
const routeLabel = (document: unknown, index: number): string => {
  const routes = (document as { routes?: unknown } | null)?.routes
  const name = Array.isArray(routes) ? (routes[index] as { name?: unknown } | null)?.name : undefined
  return typeof name === "string" && name !== "" ? name : `#${index + 1}`
}

const keyText = (path: ReadonlyArray<PropertyKey>) =>
  path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`))
    .join("")

export const parseRoutesFile = (
  file: string,
  text: string,
): Either.Either<ReadonlyArray<RouteSpec>, RoutesFileInvalid> => {
  const fail = (reason: string) => Either.left(new RoutesFileInvalid({ file, reason }))
  let document: unknown
  try {
    document = parseYaml(text, { uniqueKeys: true })
  } catch (error) {
    // The yaml library's messages name the line and column.
    return fail(`not YAML or JSON: ${String((error as Error).message).split("\n")[0]}`)
  }
  const decoded = decodeRoutesFile(document)
  if (Either.isLeft(decoded)) {
    const { path, message } = mostSpecificIssue(decoded.left)
    if (path[0] === "routes" && typeof path[1] === "number") {
      const key = path.length > 2 ? keyText(path.slice(2)) : "(the route)"
      return fail(describeRouteProblem({ route: routeLabel(document, path[1]), key, message }))
    }
    return fail(`${path.length === 0 ? "the file" : keyText(path)}: ${message}`)
  }
  const routes: Array<RouteSpec> = []
  const names = new Set<string>()
  for (const input of decoded.right.routes) {
    if (names.has(input.name)) {
      return fail(describeRouteProblem({ route: input.name, key: "name", message: "given to two routes" }))
    }
    names.add(input.name)
    const route = routeSpecOf(input)
    if (Either.isLeft(route)) return fail(describeRouteProblem(route.left))
    routes.push(route.right)
  }
  return Either.right(routes)
}
