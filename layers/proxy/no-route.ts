/** The answer to a request no route's rule matches: what was looked for, so the client can tell why. */
import type { IncomingMessage } from "node:http"
import type { Refusal } from "../../src/Attempt.ts"
import { requestFacts } from "../../src/routes/rule-match.ts"

export const noRoute = (req: IncomingMessage): Refusal => {
  const { host, path } = requestFacts(req.method, req.url, req.headers)
  return {
    status: 404,
    body: { error: "no_route", message: `no route matches host "${host}" and path "${path}"`, host, path },
  }
}
