/**
 * The balancer's own endpoints — the PRD's `GET /metrics` JSON, the `/_lb/*` views, the Prometheus
 * exposition and the live page — served beside the data plane, which hands them every request first.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Context } from "effect"

export interface AdminShape {
  /** Answers `path` when it is one of the balancer's own; false for paths that are proxied. */
  readonly handle: (req: IncomingMessage, res: ServerResponse, path: string) => boolean
}

export class Admin extends Context.Tag("swarmguard/Admin")<Admin, AdminShape>() {}
