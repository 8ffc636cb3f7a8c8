/**
 * A Node service that uses meshreg through its local agent with the unmodified npm `consul` client:
 * it serves /health, registers with an HTTP check, discovers a peer, then watches the peer and exits
 * once the peer's list changes.
 *
 *   MESHREG_AGENT=http://127.0.0.1:8500 SERVICE=node-app PEER=peer node dist/examples/node/app.js
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Consul from 'consul';

const agent = new URL(process.env['MESHREG_AGENT'] ?? 'http://127.0.0.1:8500');
const service = process.env['SERVICE'] ?? 'node-app';
const peer = process.env['PEER'] ?? 'peer';
const id = `${service}-1`;

interface HealthEntry {
  Node: { Address: string };
  Service: { Address: string; Port: number };
}

async function main(): Promise<void> {
  const server = http.createServer((req, res) => res.writeHead(req.url === '/health' ? 200 : 404).end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const consul = new Consul({ host: agent.hostname, port: Number(agent.port) });
  await consul.agent.service.register({
    name: service,
    id,
    address: '127.0.0.1',
    port,
    check: {
      name: `${service} health`,
      http: `http://127.0.0.1:${port}/health`,
      interval: '1s',
      timeout: '1s',
    },
  });
  console.log(`registered ${id} on port ${port}`);

  // One watch both discovers the peer and reports its changes.
  const watch = consul.watch({
    // The consul client's watch takes the method itself and calls it bound to the client.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    method: consul.health.service,
    options: { service: peer, passing: true, wait: '10s' } as never,
  });
  let seen = -1;
  await new Promise<void>((resolve, reject) => {
    watch.on('change', (data: HealthEntry[]) => {
      if (seen === -1 && data.length > 0) {
        const first = data[0];
        console.log(
          `discovered ${peer} at ${first?.Service.Address || first?.Node.Address}:${first?.Service.Port}`,
        );
        seen = data.length;
      } else if (seen !== -1 && data.length !== seen) {
        console.log(`${peer} changed: ${data.length} instances`);
        resolve();
      }
    });
    watch.on('error', reject);
  });
  watch.end();
  await consul.agent.service.deregister(id);
  console.log(`deregistered ${id}`);
  server.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
