/**
 * One `meshreg server` and a few `meshreg agent` processes pointed at its session, each agent with
 * its own temporary data folder: the setup of the end-to-end tests.
 */
import { startMeshreg, tempDir, type Started } from './process.js';

export interface SmallCluster {
  readonly server: Started;
  /** The agents, in the order of the names given (then those added). */
  readonly agents: Started[];
  /** Starts one more agent of node `name` on the same session. */
  addAgent(name: string): Promise<Started>;
  /** Stops every process (an agent that already exited is fine) and removes the data folders. */
  stop(): Promise<void>;
}

/** Starts the server, then one agent per name (node name = the name), all with `token`. */
export async function startSmallCluster(token: string, names: readonly string[]): Promise<SmallCluster> {
  const server = await startMeshreg('server', { MESHREG_TOKEN: token, MESHREG_SESSION_PORT: '0' });
  const cleanups: (() => Promise<unknown>)[] = [];
  const start = async (name: string): Promise<Started> => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    return startMeshreg('agent', {
      MESHREG_TOKEN: token,
      MESHREG_AGENT_PORT: '0',
      MESHREG_AGENT_UPSTREAM: server.addresses['session'] ?? '',
      MESHREG_NODE_NAME: name,
      MESHREG_AGENT_DATA_DIR: dir,
    });
  };
  const agents = await Promise.all(names.map(start));
  return {
    server,
    agents,
    addAgent: async (name) => {
      const agent = await start(name);
      agents.push(agent);
      return agent;
    },
    stop: async () => {
      await Promise.all(agents.map((a) => a.stop()));
      await server.stop();
      await Promise.all(cleanups.map((c) => c()));
    },
  };
}
