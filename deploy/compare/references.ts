/**
 * The reference load balancers: Debian's NGINX and HAProxy, each with the two load-aware policies an
 * operator would pick over round-robin, in front of the same replicas as SwarmGuard.
 */
import { spawnSync } from "node:child_process"
import { accessSync, constants, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Child, startProgram } from "../../src/process/child.ts"
import { freePorts } from "../../src/process/ports.ts"
import { untilAnswers } from "../../src/process/wait.ts"

export interface Reference {
  /** e.g. `nginx least_conn`: the name a report row carries. */
  readonly name: string
  readonly origin: string
  /** The process serving it (one per program, both policies in it), whose CPU a row reports. */
  readonly pid: number
}

export interface ReferenceSet {
  readonly references: ReadonlyArray<Reference>
  /** Program → version used, or why it was not. */
  readonly status: Record<string, { readonly used: boolean; readonly detail: string }>
}

const READY_TIMEOUT_MS = 10_000

/** The first line a program prints about its version (nginx on stderr, HAProxy on stdout). */
const versionOf = (command: string, args: ReadonlyArray<string>): string | undefined => {
  const { stdout, stderr } = spawnSync(command, args, { encoding: "utf8" })
  return `${stdout ?? ""}${stderr ?? ""}`.split("\n")[0]?.trim() || undefined
}

/** Debian installs both in /usr/sbin, which is not on every user's PATH. */
const find = (command: string): string | undefined =>
  ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
    .map((dir) => join(dir, command))
    .find((path) => {
      try {
        accessSync(path, constants.X_OK)
        return true
      } catch {
        return false
      }
    })

/** Same passive failure handling as the balancer's defaults: 3 failures take a replica out for 10 s. */
const nginxConfig = (dir: string, replicas: ReadonlyArray<string>, ports: ReadonlyArray<number>) => {
  const servers = replicas.map((address) => `    server ${address} max_fails=3 fail_timeout=10s;`).join("\n")
  const upstream = (name: string, policy: string) =>
    `  upstream ${name} {\n    ${policy};\n${servers}\n    keepalive 64;\n  }`
  const server = (port: number, upstreamName: string) => `  server {
    listen 127.0.0.1:${port};
    access_log off;
    location / {
      proxy_pass http://${upstreamName};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 60s;
    }
  }`
  // One process and no master: nothing outlives the comparison if it is killed outright.
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${upstream("least_conn_pool", "least_conn")}
${upstream("random_pool", "random two least_conn")}
${server(ports[0]!, "least_conn_pool")}
${server(ports[1]!, "random_pool")}
}
`
}

/** Active health checks like the balancer's (GET /health every second, rise 2, fall 3). */
const haproxyConfig = (replicas: ReadonlyArray<string>, ports: ReadonlyArray<number>) => {
  const servers = replicas
    .map((address, i) => `  server r${i + 1} ${address} check inter 1s rise 2 fall 3`)
    .join("\n")
  const backend = (name: string, balance: string, port: number) => `frontend ${name}_in
  bind 127.0.0.1:${port}
  default_backend ${name}
backend ${name}
  balance ${balance}
  option httpchk GET /health
  http-reuse always
${servers}`
  return `global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
${backend("leastconn", "leastconn", ports[0]!)}
${backend("random2", "random(2)", ports[1]!)}
`
}

/** Starts whichever of NGINX and HAProxy is installed, in front of `replicas` (host:port each). */
export const startReferences = async (replicas: ReadonlyArray<string>): Promise<ReferenceSet> => {
  const references: Array<Reference> = []
  const status: Record<string, { used: boolean; detail: string }> = {}
  const dir = mkdtempSync(join(tmpdir(), "swarmguard-references-"))
  const origin = (port: number) => `http://127.0.0.1:${port}`
  const check = async (child: Child, ports: ReadonlyArray<number>) => {
    for (const port of ports) await untilAnswers(child, `${origin(port)}/health`, READY_TIMEOUT_MS)
  }

  const nginx = find("nginx")
  if (nginx === undefined) {
    status.nginx = { used: false, detail: "not installed: apt-get install nginx-light" }
  } else {
    const ports = await freePorts("127.0.0.1", 2)
    writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir, replicas, ports))
    const child = startProgram("nginx", nginx, ["-p", dir, "-c", join(dir, "nginx.conf")], {})
    await check(child, ports)
    references.push(
      { name: "nginx least_conn", origin: origin(ports[0]!), pid: child.pid },
      { name: "nginx random two least_conn", origin: origin(ports[1]!), pid: child.pid },
    )
    status.nginx = { used: true, detail: versionOf(nginx, ["-v"]) ?? "nginx" }
  }

  const haproxy = find("haproxy")
  if (haproxy === undefined) {
    status.haproxy = { used: false, detail: "not installed: apt-get install haproxy" }
  } else {
    const ports = await freePorts("127.0.0.1", 2)
    writeFileSync(join(dir, "haproxy.cfg"), haproxyConfig(replicas, ports))
    // -db: stay in the foreground; -W is not wanted, one process is enough at these rates.
    const child = startProgram("haproxy", haproxy, ["-db", "-f", join(dir, "haproxy.cfg")], {})
    await check(child, ports)
    references.push(
      { name: "haproxy leastconn", origin: origin(ports[0]!), pid: child.pid },
      { name: "haproxy random(2)", origin: origin(ports[1]!), pid: child.pid },
    )
    status.haproxy = { used: true, detail: versionOf(haproxy, ["-v"]) ?? "haproxy" }
  }
  return { references, status }
}
