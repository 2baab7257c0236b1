/**
 * Routes from `LB_ROUTES_FILE`, read again every `ROUTES_POLL_INTERVAL`. The text is compared, not
 * the modification time: a file replaced by rename (editors, `docker config` mounts, `kubectl`-style
 * symlink swaps) or edited twice within a second is still seen. A file that cannot be read or decoded
 * at start stops the balancer; later, it is refused and the last good routes stay.
 */
import { readFile } from "node:fs/promises"
import { Duration, Effect, Either, Equivalence, Layer, Option, Schedule, Stream } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { type RouteSet, RouteSource, type RoutesRefused } from "../../src/RouteSource.ts"
import { parseRoutesFile, RoutesFileInvalid } from "../../src/routes/routes-file.ts"

const sameRead = Either.getEquivalence({ left: Equivalence.string, right: Equivalence.string })

export const layer = Layer.effect(
  RouteSource,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const file = config.routesFile
    const read = Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (error) =>
        new RoutesFileInvalid({
          file,
          reason: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        }),
    })
    const decode = (text: string) =>
      Either.map(parseRoutesFile(file, text), (routes): RouteSet => ({ routes, source: `file ${file}` }))

    const first = yield* read
    const initial = yield* decode(first)

    // What was last read: a version is decoded once, when it first appears.
    let seen: Either.Either<string, string> = Either.right(first)
    const changes = Stream.repeatEffectWithSchedule(
      read.pipe(
        Effect.mapError(({ message }) => message),
        Effect.either,
      ),
      Schedule.spaced(Duration.millis(config.routesPollIntervalMs)),
    ).pipe(
      Stream.filterMap((latest): Option.Option<Either.Either<RouteSet, RoutesRefused>> => {
        if (sameRead(latest, seen)) return Option.none()
        seen = latest
        return Option.some(
          Either.match(latest, {
            onLeft: (message) => Either.left({ message }),
            onRight: (text) => Either.mapLeft(decode(text), ({ message }) => ({ message })),
          }),
        )
      }),
    )
    return { initial, changes }
  }),
)
