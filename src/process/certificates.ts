/**
 * Self-signed certificates made with the real openssl, for running the balancer with TLS in tests,
 * benchmarks and examples: a P-256 key and a certificate for localhost and 127.0.0.1.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

export interface CertificateFiles {
  readonly certFile: string
  readonly keyFile: string
}

export const makeSelfSigned = async (
  dir: string,
  { name = "tls", commonName = "localhost", openssl = "openssl" } = {},
): Promise<CertificateFiles> => {
  const certFile = join(dir, `${name}.cert.pem`)
  const keyFile = join(dir, `${name}.key.pem`)
  // biome-ignore format: openssl's options read best in their pairs
  await run(openssl, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", `/CN=${commonName}`,
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], { timeout: 10_000 })
  return { certFile, keyFile }
}
