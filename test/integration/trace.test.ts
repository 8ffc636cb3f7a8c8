/**
 * One registration is one trace: an agent process and a control-plane process export spans by
 * OTLP/HTTP JSON to a receiver the test runs, and the spans of the agent's register, the session's
 * publish, the data server's publish and the session's push share one trace ID.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { http as request } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { RawSubscriber } from '../support/raw-subscriber.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'trace-token';

interface ReceivedSpan {
  readonly name: string;
  readonly traceId: string;
  readonly service: string;
}

/** A minimal OTLP/HTTP JSON trace receiver (POST /v1/traces). */
function receiver(spans: ReceivedSpan[]): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as {
        resourceSpans?: {
          resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
          scopeSpans?: { spans?: { name: string; traceId: string }[] }[];
        }[];
      };
      for (const rs of body.resourceSpans ?? []) {
        const service =
          rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? []) spans.push({ name: s.name, traceId: s.traceId, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
}

describe('traces', () => {
  const spans: ReceivedSpan[] = [];
  const server = receiver(spans);
  const procs: Started[] = [];
  let cleanup: () => Promise<void> = () => Promise.resolve();

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const otel = {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces`,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const cp = await startMeshreg('server', { ...otel, MESHREG_TOKEN: TOKEN });
    procs.push(cp);
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    procs.push(
      await startMeshreg('agent', {
        ...otel,
        MESHREG_TOKEN: TOKEN,
        MESHREG_AGENT_UPSTREAM: cp.addresses['session'] ?? '',
        MESHREG_AGENT_DATA_DIR: tmp.dir,
      }),
    );
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop();
    server.close();
    await cleanup();
  });

  test('traces - one registration has spans from agent, session and data in one trace', async () => {
    const [cp, agent] = procs;
    const sub = new RawSubscriber(cp?.addresses['session'] ?? '', TOKEN, ['traced']);
    try {
      await waitFor('the agent is connected', async () => {
        const h = await request('GET', `${agent?.addresses['agent'] ?? ''}/v1/meshreg/health`);
        return (h.body as { status: string }).status === 'ok';
      });
      // The subscriber's first (empty) push must be out of the way so the next push is the change's.
      await waitFor('the subscriber got its first push', () => sub.observations.length > 0, 10_000);
      const r = await request('PUT', `${agent?.addresses['agent'] ?? ''}/v1/agent/service/register`, {
        Name: 'traced',
        Port: 9000,
      });
      assert.equal(r.status, 200);
      await waitFor('the subscriber got the instance', () => sub.count('traced') === 1);
      const trace = await waitFor(
        'spans of all four steps in one trace',
        () => {
          const register = spans.find((s) => s.name === 'agent.register');
          if (register === undefined) return undefined;
          const same = spans.filter((s) => s.traceId === register.traceId).map((s) => s.name);
          const want = ['agent.register', 'session.publish', 'data.publish', 'session.push'];
          return want.every((n) => same.includes(n))
            ? spans.filter((s) => s.traceId === register.traceId)
            : undefined;
        },
        10_000,
      );
      assert.equal(trace.find((s) => s.name === 'agent.register')?.service, 'meshreg-agent');
      assert.equal(trace.find((s) => s.name === 'data.publish')?.service, 'meshreg-meta-data-session');
      assert.equal(
        trace.filter((s) => s.name === 'session.push').length,
        1,
        'one push span per datum version',
      );
    } finally {
      sub.close();
    }
  });
});
