/** A configuration value that cannot be used; the program reports it in one line and exits 1. */
import { Data } from "effect"

export class ConfigInvalid extends Data.TaggedError("ConfigInvalid")<{
  readonly variable: string
  readonly value: string
  readonly expected: string
}> {
  override get message(): string {
    return `invalid configuration: ${this.variable}=${JSON.stringify(this.value)}: expected ${this.expected}`
  }
}
