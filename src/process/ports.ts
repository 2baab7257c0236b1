/** Free ports, for children that take their port from the environment rather than picking one. */
import { type AddressInfo, createServer } from "node:net"

/** `count` ports free on `host` right now; all are held until all are found, so none is given twice. */
export const freePorts = async (host: string, count: number): Promise<Array<number>> => {
  const servers = Array.from({ length: count }, () => createServer())
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once("error", reject)
          server.listen(0, host, () => resolve((server.address() as AddressInfo).port))
        }),
    ),
  )
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}
