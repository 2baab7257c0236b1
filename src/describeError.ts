/** One line on why a control-plane HTTP call failed, down to the socket error where there is one. */
import type * as HttpClientError from "@effect/platform/HttpClientError"

export const describeError = (
  error: HttpClientError.HttpClientError | string | { readonly message: string },
): string => {
  if (typeof error === "string") return error
  const cause =
    "cause" in error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined
  const detail = cause === undefined ? undefined : typeof cause.code === "string" ? cause.code : cause.message
  return typeof detail === "string" && detail !== "" ? `${error.message}: ${detail}` : error.message
}
