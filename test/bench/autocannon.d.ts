/** The slice of autocannon's programmatic API the benchmark uses (the package ships no types). */
declare module "autocannon" {
  interface Options {
    readonly url: string
    readonly connections?: number
    readonly duration?: number
    readonly pipelining?: number
    readonly timeout?: number
    readonly method?: string
    readonly headers?: Record<string, string>
    readonly body?: string
  }

  interface Result {
    /** Seconds, rounded to 10 ms. */
    readonly duration: number
    readonly errors: number
    readonly timeouts: number
    readonly non2xx: number
    readonly "2xx": number
    readonly requests: { readonly total: number; readonly average: number }
  }

  interface Instance extends PromiseLike<Result> {
    /** `responseTime` is in milliseconds, measured with `process.hrtime`. */
    on(
      event: "response",
      listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void,
    ): this
    on(event: "error", listener: (error: Error) => void): this
  }

  function autocannon(options: Options): Instance
  export default autocannon
}
