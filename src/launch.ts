/**
 * Runs a program's layer until a signal stops it. Expected failures (bad configuration, a port in
 * use, no Engine to read) print one line and exit 1; anything else is a bug and prints its cause.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Layer, Logger } from "effect"

// biome-ignore lint/suspicious/noExplicitAny: any error class with a one-line message qualifies
type ErrorClass = abstract new (...args: any) => { readonly message: string }

/** Some platform errors carry their reason only in `cause` (e.g. a listen error inside ServeError). */
const oneLine = (error: { readonly message: string; readonly cause?: unknown }): string =>
  error.message !== ""
    ? error.message
    : error.cause instanceof Error
      ? error.cause.message
      : String(error.cause)

export const launch = <ROut, E>(
  name: string,
  layer: Layer.Layer<ROut, E>,
  expectedErrors: ReadonlyArray<ErrorClass>,
): void => {
  const program = Layer.launch(layer).pipe(
    Effect.tapErrorCause((cause) =>
      Effect.sync(() => {
        if (Cause.isInterruptedOnly(cause)) return
        const failure = Cause.failureOption(cause)
        const expected =
          failure._tag === "Some" && expectedErrors.some((errorClass) => failure.value instanceof errorClass)
        const line = expected
          ? oneLine(failure.value as { message: string; cause?: unknown })
          : Cause.pretty(cause)
        process.stderr.write(`${name}: ${line}\n`)
      }),
    ),
    Effect.provide(Logger.logFmt),
  )
  NodeRuntime.runMain(program, { disableErrorReporting: true, disablePrettyLogger: true })
}
