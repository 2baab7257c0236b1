/** Waiting for a child to be ready: a log line, an IPC message or an answer, before it exits or times out. */
import { setTimeout as sleep } from "node:timers/promises"
import type { Child } from "./child.ts"
import { get } from "./http.ts"

/** Lines of a child's output an error shows: enough to explain a crash, short enough to read. */
const TAIL_LINES = 30

const failure = (child: Child, what: string) => {
  const tail = child
    .output()
    .split("\n")
    .filter((line) => line !== "")
    .slice(-TAIL_LINES)
    .join("\n")
  return new Error(`${child.name} ${what}; its last output:\n${tail || "(none)"}`)
}

/**
 * What `wait` finds, unless the child exits or `timeoutMs` passes first. `wait` gets a signal that
 * aborts once the outcome is decided, to stop its polling or listening.
 */
const race = <A>(
  child: Child,
  what: string,
  timeoutMs: number,
  wait: (decided: AbortSignal) => Promise<A>,
): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const decided = new AbortController()
    const settle = (finish: () => void) => {
      if (decided.signal.aborted) return
      decided.abort()
      clearTimeout(timer)
      finish()
    }
    const timer = setTimeout(
      () => settle(() => reject(failure(child, `did not ${what} within ${timeoutMs} ms`))),
      timeoutMs,
    )
    void child.exited.then((exit) =>
      settle(() => reject(failure(child, `exited (${exit.code ?? exit.signal}) before it could ${what}`))),
    )
    wait(decided.signal).then(
      (found) => settle(() => resolve(found)),
      (error) => settle(() => reject(error)),
    )
  })

/** Calls `probe` every `intervalMs` until it finds something; ends with an AbortError once decided. */
const poll = async <A>(
  decided: AbortSignal,
  intervalMs: number,
  probe: () => A | undefined | Promise<A | undefined>,
): Promise<A> => {
  for (;;) {
    const found = await probe()
    if (found !== undefined) return found
    await sleep(intervalMs, undefined, { signal: decided })
  }
}

/** The first match of `pattern` in what the child writes to stdout. */
export const untilLogged = (
  child: Child,
  pattern: RegExp,
  what: string,
  timeoutMs: number,
): Promise<RegExpExecArray> =>
  race(child, what, timeoutMs, (decided) =>
    poll(decided, 20, () => pattern.exec(child.stdout()) ?? undefined),
  )

/** The next IPC message from the child that `accept` takes (any, by default). */
export const nextMessage = <A>(
  child: Child,
  what: string,
  timeoutMs: number,
  accept: (message: unknown) => boolean = () => true,
): Promise<A> =>
  race(
    child,
    what,
    timeoutMs,
    (decided) =>
      new Promise<A>((resolve) => {
        const onMessage = (message: unknown) => {
          if (accept(message)) resolve(message as A)
        }
        child.process.on("message", onMessage)
        decided.addEventListener("abort", () => child.process.off("message", onMessage))
      }),
  )

/** Polls `url` until it answers 200: the child is up, and reaches whatever it needs to answer. */
export const untilAnswers = async (child: Child, url: string, timeoutMs: number): Promise<void> => {
  await race(child, `answer ${url}`, timeoutMs, (decided) =>
    poll(decided, 100, async () => ((await get(url))?.status === 200 ? true : undefined)),
  )
}
