#!/usr/bin/env node
/**
 * The `meshreg` command: the process entry point, and the only place that composes the agent with
 * the control plane (they never import each other).
 *
 *   meshreg dev      meta + data + session + one agent in one process (the embedded default)
 *   meshreg server   the control plane without an agent
 *   meshreg agent    a sidecar agent pointed at a control plane
 */
import { Agent } from '../agent/agent.js';
import { AGENT_VARS, readAgentConfig } from '../agent/config.js';
import { CONTROL_PLANE_VARS, readControlPlaneConfig } from '../control-plane/config.js';
import { consoleForwarder } from '../control-plane/console/console-forward.js';
import { ControlPlane } from '../control-plane/server.js';
import { createLogger, type Logger } from '../proto/runtime/log.js';
import { runCtl } from './ctl.js';
import { startTelemetry } from './telemetry.js';

/** A started process: how to stop it, and (for a drained server) a promise that asks it to stop. */
interface Running {
  readonly logger: Logger;
  stop(): Promise<void>;
  readonly finished?: Promise<string>;
}

const HELP = `meshreg — a service registry with a Consul-compatible sidecar agent

Usage: meshreg <command>

Commands:
  dev       Start the embedded default: meta, data and session servers plus one agent, in one process.
  server    Start control-plane roles without an agent: meta, data and session by default, or the
            roles listed in MESHREG_ROLES (e.g. MESHREG_ROLES=data). Each role has its own port
            and a GET /health.
  agent     Start a sidecar agent connected to the session servers in MESHREG_AGENT_UPSTREAM.
  ctl       Operate a cluster through meta's admin API (meshreg ctl --help).
  help      Show this text (also --help).

Metrics are served in Prometheus text at GET /metrics on every role port (the agent:
GET /v1/meshreg/metrics); OTLP export and traces follow the standard OTEL_* variables.

Every setting is an environment variable:
${[...CONTROL_PLANE_VARS, ...AGENT_VARS]
  .filter((v, i, all) => all.findIndex((w) => w.name === v.name) === i)
  .map((v) => `  ${v.name.padEnd(38)} ${v.doc} [${v.default}]`)
  .join('\n')}
`;

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] ?? 'help';
  switch (command) {
    case 'dev':
      return run(await startDev());
    case 'server':
      if (argv.includes('--help')) {
        process.stdout.write(HELP);
        return 0;
      }
      return run(await startServer());
    case 'agent':
      return run(await startAgent());
    case 'ctl':
      return runCtl(argv.slice(1), process.env);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`meshreg: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

/** Prints the one ready line: human words, then the addresses as JSON for scripts and tests. */
function ready(what: string, addresses: Record<string, string>): void {
  process.stdout.write(`meshreg ${what} ready ${JSON.stringify(addresses)}\n`);
}

async function startDev(): Promise<Running> {
  const cp = readControlPlaneConfig(process.env, { dev: true });
  const logger = createLogger(cp.logLevel, { pid: process.pid });
  // The SDK starts before any module exists: instruments bind to the meter provider when created.
  const telemetry = startTelemetry('meshreg-dev', process.env, logger);
  const plane = new ControlPlane({ ...cp, roles: ['meta', 'data', 'session'] }, logger, {
    scrape: telemetry.scrape,
  });
  await plane.start();
  const session = plane.session?.url ?? '';
  // The console on the agent's port too: its pages here, its admin calls passed to meta.
  const metaHttp = (): string =>
    (plane.meta?.url ?? '').replace(/^ws(s?):\/\//, 'http$1://').replace(/\/v1\/.*$/, '');
  const agent = await Agent.start(
    readAgentConfig(process.env, { token: cp.token, upstream: [session] }),
    logger,
    { scrape: telemetry.scrape, http: consoleForwarder(metaHttp, cp.admin.remote) },
  );
  ready('dev', {
    agent: agent.address,
    console: `${agent.address}/ui/`,
    ...(agent.xdsAddress === '' ? {} : { xds: agent.xdsAddress }),
    ...plane.addresses(),
  });
  return {
    logger,
    finished: agent.left,
    stop: async () => {
      await agent.stop();
      await plane.stop();
      await telemetry.shutdown();
    },
  };
}

async function startServer(): Promise<Running> {
  const cp = readControlPlaneConfig(process.env, { dev: false });
  const logger = createLogger(cp.logLevel, { pid: process.pid });
  const telemetry = startTelemetry(`meshreg-${cp.roles.join('-')}`, process.env, logger);
  let drained: (why: string) => void = () => undefined;
  const finished = new Promise<string>((resolve) => {
    drained = resolve;
  });
  const plane = new ControlPlane(cp, logger, {
    scrape: telemetry.scrape,
    // A drained server has handed everything over; the process has nothing left to do.
    onDrained: (role) => {
      drained(`${role} drained`);
    },
  });
  await plane.start();
  ready('server', plane.addresses());
  return {
    logger,
    finished,
    stop: async () => {
      await plane.stop();
      await telemetry.shutdown();
    },
  };
}

async function startAgent(): Promise<Running> {
  const config = readAgentConfig(process.env);
  const logger = createLogger(config.logLevel, { pid: process.pid });
  const telemetry = startTelemetry('meshreg-agent', process.env, logger);
  const agent = await Agent.start(config, logger, { scrape: telemetry.scrape });
  ready('agent', { agent: agent.address, ...(agent.xdsAddress === '' ? {} : { xds: agent.xdsAddress }) });
  return {
    logger,
    finished: agent.left,
    stop: async () => {
      await agent.stop();
      await telemetry.shutdown();
    },
  };
}

/** Waits for SIGINT/SIGTERM (or a drain), then stops cleanly (a second signal exits at once). */
function run(proc: Running): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) {
        process.exit(130);
      }
      stopping = true;
      proc.logger.info('stopping', { signal });
      proc.stop().then(
        () => {
          resolve(0);
        },
        (err: unknown) => {
          proc.logger.error('error while stopping', { err });
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void proc.finished?.then(onSignal);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Anything still holding the event loop open after a clean stop is not worth waiting for.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`meshreg: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
