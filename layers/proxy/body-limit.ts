/**
 * `MAX_REQUEST_BODY` for bodies of unknown length (chunked): the body reaches the replica through a
 * counting stream that fails with BodyTooLarge once the limit is passed, which ends the upstream
 * request; the exchange then answers 413. Bodies with a Content-Length are checked before routing.
 */
import type { IncomingMessage } from "node:http"
import { pipeline, Transform } from "node:stream"

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`)
  }
}

export const limitBody = (req: IncomingMessage, limit: number): Transform => {
  let received = 0
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length
      done(received > limit ? new BodyTooLarge(limit) : null, chunk)
    },
  })
  // The client's own errors (it went away) end the counted stream too; the exchange sees those.
  pipeline(req, counted, () => {})
  return counted
}
