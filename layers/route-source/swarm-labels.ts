/**
 * Routes from Swarm service labels (`ROUTES_FROM_LABELS=true`), read from a manager's Engine every
 * `ROUTES_POLL_INTERVAL`: one route per service labelled `swarmguard.enable=true`
 * (`src/routes/service-labels.ts`). Service labels live on the service, which only managers serve,
 * and `docker service update --label-add` changes them without touching a task: the agents, which see
 * containers, never see them. A service whose labels cannot be used is refused on its own (logged,
 * counted), keeping its last good route if it had one; the others are routed.
 */
import { Data, Duration, Effect, Either, Layer, Option, Schedule, Stream } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { describeError } from "../../src/describeError.ts"
import { type RouteSet, RouteSource, type RoutesRefused } from "../../src/RouteSource.ts"
import type { RouteSpec } from "../../src/routes/route-spec.ts"
import { describeLabelProblem, ENABLE_LABEL, routeOfLabels } from "../../src/routes/service-labels.ts"
import { managerEngine } from "../manager-engine.ts"

/** The Engine could not list the services at start: the balancer cannot know its routes. */
export class ServicesUnavailable extends Data.TaggedError("ServicesUnavailable")<{
  readonly engine: string
  readonly reason: string
}> {
  override get message() {
    return `cannot read service labels from the Engine at ${this.engine} (ROUTES_FROM_LABELS needs a manager's Engine): ${this.reason}`
  }
}

interface LabelledService {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
}

const LIST_TIMEOUT = Duration.seconds(5)

type Change = Either.Either<RouteSet, RoutesRefused>
const refused = (problem: RoutesRefused): Change => Either.left(problem)
const applied = (set: RouteSet): Change => Either.right(set)

export const layer = Layer.effect(
  RouteSource,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const engine = config.dockerHost
    const docker = yield* managerEngine(engine)
    const list = Effect.tryPromise({
      try: (signal) =>
        docker.listServices({ filters: { label: [`${ENABLE_LABEL}=true`] }, abortSignal: signal }),
      catch: (error) => new ServicesUnavailable({ engine, reason: describeError(error as Error) }),
    }).pipe(
      Effect.timeoutFail({
        duration: LIST_TIMEOUT,
        onTimeout: () => new ServicesUnavailable({ engine, reason: "no answer within 5 s" }),
      }),
      Effect.map(
        (services): ReadonlyArray<LabelledService> =>
          services
            .map((service) => ({
              name: service.Spec?.Name ?? service.ID,
              labels: service.Spec?.Labels ?? {},
            }))
            .sort((a, b) => a.name.localeCompare(b.name)),
      ),
    )

    /** Each service's last good route: a bad edit of its labels keeps it. */
    const lastGood = new Map<string, RouteSpec>()
    const setOf = (services: ReadonlyArray<LabelledService>) => {
      const routes: Array<RouteSpec> = []
      const problems: Array<RoutesRefused> = []
      for (const service of services) {
        const route = routeOfLabels(service.name, service.labels)
        if (route === undefined) continue
        if (Either.isRight(route)) lastGood.set(service.name, route.right)
        else problems.push({ message: describeLabelProblem(route.left) })
        const good = lastGood.get(service.name)
        if (good !== undefined) routes.push(good)
      }
      return { set: { routes, source: `service labels on ${engine}` } satisfies RouteSet, problems }
    }

    const first = yield* list
    const initial = setOf(first)
    let seen = JSON.stringify(first)
    const polls = Stream.repeatEffectWithSchedule(
      Effect.either(list),
      Schedule.spaced(Duration.millis(config.routesPollIntervalMs)),
    ).pipe(
      Stream.filterMap((latest) => {
        // Only what changed is applied, and an outage is reported once, not at every poll.
        const text = Either.isRight(latest) ? JSON.stringify(latest.right) : latest.left.message
        if (text === seen) return Option.none()
        seen = text
        return Option.some(latest)
      }),
      Stream.flatMap(
        Either.match({
          onLeft: ({ message }) => Stream.make(refused({ message })),
          onRight: (services) => {
            const { set, problems } = setOf(services)
            return Stream.fromIterable([...problems.map(refused), applied(set)])
          },
        }),
      ),
    )
    // Problems found at start are reported like later ones.
    const changes = Stream.concat(Stream.fromIterable(initial.problems.map(refused)), polls)
    return { initial: initial.set, changes }
  }),
)
