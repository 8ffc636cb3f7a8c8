/**
 * Command-line flags of the benchmark: every workload parameter has one, and `--quick` swaps the
 * defaults for a short smoke run. Flags given explicitly always win over `--quick`.
 */
import { parseArgs } from 'node:util';

export const WORKLOADS = [
  'registration',
  'push',
  'scale',
  'churn',
  'reads',
  'recovery',
  'agent1',
  'agents50',
  'scale-agents',
  'federation',
] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface BenchOptions {
  readonly only: readonly WorkloadName[];
  readonly quick: boolean;
  readonly etcd: boolean;
  readonly outDir: string;
  /** Upper bound of any single workload side (meshreg or etcd), after which it is abandoned. */
  readonly workloadTimeoutMs: number;
  readonly regInstances: number;
  readonly regServices: number;
  readonly regAgents: number;
  readonly regRounds: number;
  readonly pushSubscribers: number;
  readonly pushFlips: number;
  readonly etcdConnections: number;
  readonly scaleInstances: number;
  readonly scaleServiceSize: number;
  readonly scaleAgents: number;
  readonly scaleProbes: number;
  readonly etcdScaleInstances: number;
  readonly churnInstances: number;
  readonly churnSubscribers: number;
  readonly graceMs: number;
  readonly churnRounds: number;
  readonly etcdLeaseTtlSec: number;
  readonly readsInstances: number;
  readonly readsConnections: number;
  readonly readsDurationMs: number;
  readonly recoveryInstances: number;
  readonly recoveryAgents: number;
  readonly recoveryServices: number;
  readonly recoverySubscribers: number;
  readonly pushSidecarAgents: number;
  readonly pushSidecarWatchers: number;
  readonly a1Registrations: number;
  readonly a1Clients: number;
  readonly a1ReadsDurationMs: number;
  readonly a1FanoutSmall: number;
  readonly a1FanoutLarge: number;
  readonly a1Changes: number;
  readonly a50Agents: number;
  readonly a50Registrations: number;
  readonly a50Services: number;
  readonly a50Inflight: number;
  readonly a50WatchersPerAgent: number;
  readonly a50Changes: number;
  readonly a50DeregInstances: number;
  readonly saAgents: number;
  readonly saPerAgent: number;
  readonly saServiceSize: number;
  readonly saInflight: number;
  readonly saWatchers: number;
  readonly saReads: number;
  readonly fedChanges: number;
  readonly fedDigestMs: number;
}

interface NumberFlag {
  readonly key: keyof BenchOptions;
  readonly flag: string;
  readonly full: number;
  readonly quick: number;
  readonly doc: string;
}

const NUMBERS: readonly NumberFlag[] = [
  {
    key: 'workloadTimeoutMs',
    flag: 'timeout-ms',
    full: 180_000,
    quick: 60_000,
    doc: 'cap per workload side',
  },
  { key: 'regInstances', flag: 'reg-instances', full: 20_000, quick: 2_000, doc: 'instances registered' },
  { key: 'regServices', flag: 'reg-services', full: 200, quick: 20, doc: 'services they spread over' },
  { key: 'regAgents', flag: 'reg-agents', full: 50, quick: 10, doc: 'registering agents' },
  { key: 'regRounds', flag: 'reg-rounds', full: 3, quick: 1, doc: 'repetitions (median reported)' },
  { key: 'pushSubscribers', flag: 'push-subscribers', full: 1_000, quick: 100, doc: 'subscribing agents' },
  { key: 'pushFlips', flag: 'push-flips', full: 50, quick: 10, doc: 'changes timed' },
  { key: 'etcdConnections', flag: 'etcd-connections', full: 50, quick: 10, doc: 'etcd client connections' },
  { key: 'scaleInstances', flag: 'scale-instances', full: 1_000_000, quick: 50_000, doc: 'instances held' },
  { key: 'scaleServiceSize', flag: 'scale-service-size', full: 10_000, quick: 5_000, doc: 'per service' },
  { key: 'scaleAgents', flag: 'scale-agents', full: 100, quick: 10, doc: 'agents holding them' },
  { key: 'scaleProbes', flag: 'scale-probes', full: 7, quick: 3, doc: 'new subscriptions timed' },
  {
    key: 'etcdScaleInstances',
    flag: 'etcd-scale-instances',
    full: 100_000,
    quick: 20_000,
    doc: 'keys written to etcd for the scale workload',
  },
  {
    key: 'churnInstances',
    flag: 'churn-instances',
    full: 1_000,
    quick: 200,
    doc: 'instances of the killed agent',
  },
  { key: 'churnSubscribers', flag: 'churn-subscribers', full: 100, quick: 20, doc: 'watching agents' },
  { key: 'graceMs', flag: 'grace-ms', full: 1_000, quick: 1_000, doc: 'session client grace period' },
  { key: 'churnRounds', flag: 'churn-rounds', full: 3, quick: 1, doc: 'repetitions (median reported)' },
  { key: 'etcdLeaseTtlSec', flag: 'etcd-lease-ttl', full: 2, quick: 2, doc: 'etcd lease TTL (s)' },
  {
    key: 'readsInstances',
    flag: 'reads-instances',
    full: 100,
    quick: 100,
    doc: 'instances of the read service',
  },
  { key: 'readsConnections', flag: 'reads-connections', full: 32, quick: 32, doc: 'concurrent connections' },
  { key: 'readsDurationMs', flag: 'reads-duration-ms', full: 10_000, quick: 2_000, doc: 'time per side' },
  { key: 'recoveryInstances', flag: 'recovery-instances', full: 100_000, quick: 10_000, doc: 'instances' },
  { key: 'recoveryAgents', flag: 'recovery-agents', full: 100, quick: 20, doc: 'agents holding them' },
  { key: 'recoveryServices', flag: 'recovery-services', full: 100, quick: 20, doc: 'services' },
  { key: 'recoverySubscribers', flag: 'recovery-subscribers', full: 10, quick: 5, doc: 'watching agents' },
  {
    key: 'pushSidecarAgents',
    flag: 'push-sidecar-agents',
    full: 50,
    quick: 10,
    doc: 'push, sidecar shape: subscribing agents',
  },
  {
    key: 'pushSidecarWatchers',
    flag: 'push-sidecar-watchers',
    full: 20,
    quick: 10,
    doc: 'push, sidecar shape: watchers per agent',
  },
  {
    key: 'a1Registrations',
    flag: 'a1-registrations',
    full: 10_000,
    quick: 2_000,
    doc: 'agent1: registrations',
  },
  { key: 'a1Clients', flag: 'a1-clients', full: 32, quick: 32, doc: 'agent1: concurrent HTTP clients' },
  { key: 'a1ReadsDurationMs', flag: 'a1-reads-ms', full: 5_000, quick: 2_000, doc: 'agent1: read loop time' },
  { key: 'a1FanoutSmall', flag: 'a1-fanout-small', full: 100, quick: 100, doc: 'agent1: blocking queries' },
  {
    key: 'a1FanoutLarge',
    flag: 'a1-fanout-large',
    full: 1_000,
    quick: 1_000,
    doc: 'agent1: blocking queries',
  },
  { key: 'a1Changes', flag: 'a1-changes', full: 30, quick: 10, doc: 'agent1: changes timed per fan-out' },
  { key: 'a50Agents', flag: 'a50-agents', full: 50, quick: 10, doc: 'agents50: real agent processes' },
  {
    key: 'a50Registrations',
    flag: 'a50-registrations',
    full: 20_000,
    quick: 2_000,
    doc: 'agents50: registrations',
  },
  {
    key: 'a50Services',
    flag: 'a50-services',
    full: 200,
    quick: 20,
    doc: 'agents50: services they spread over',
  },
  {
    key: 'a50Inflight',
    flag: 'a50-inflight',
    full: 4,
    quick: 4,
    doc: 'agents50: requests in flight per client',
  },
  {
    key: 'a50WatchersPerAgent',
    flag: 'a50-watchers',
    full: 20,
    quick: 10,
    doc: 'agents50: blocking queries per agent',
  },
  { key: 'a50Changes', flag: 'a50-changes', full: 20, quick: 5, doc: 'agents50: changes timed' },
  {
    key: 'a50DeregInstances',
    flag: 'a50-dereg-instances',
    full: 1_000,
    quick: 200,
    doc: 'agents50: instances deregistered on one agent',
  },
  { key: 'fedChanges', flag: 'fed-changes', full: 200, quick: 40, doc: 'federation: changes timed' },
  {
    key: 'fedDigestMs',
    flag: 'fed-digest-ms',
    full: 6_000,
    quick: 6_000,
    doc: 'federation: digest interval of both data centers',
  },
  { key: 'saAgents', flag: 'sa-agents', full: 50, quick: 10, doc: 'scale-agents: real agent processes' },
  { key: 'saPerAgent', flag: 'sa-per-agent', full: 1_000, quick: 200, doc: 'scale-agents: instances each' },
  {
    key: 'saServiceSize',
    flag: 'sa-service-size',
    full: 100,
    quick: 100,
    doc: 'scale-agents: instances per service',
  },
  { key: 'saInflight', flag: 'sa-inflight', full: 4, quick: 4, doc: 'scale-agents: requests in flight each' },
  { key: 'saWatchers', flag: 'sa-watchers', full: 2, quick: 2, doc: 'scale-agents: watchers per agent' },
  { key: 'saReads', flag: 'sa-reads', full: 1_000, quick: 200, doc: 'scale-agents: reads after the load' },
];

export const USAGE = `npm run bench -- [flags]

  --only a,b          workloads to run (${WORKLOADS.join(', ')}); default all
  --quick             a short smoke run with small counts
  --no-etcd           skip the etcd baseline
  --out DIR           where the JSON result goes [bench-results]
${NUMBERS.map((n) => `  --${n.flag.padEnd(22)} ${n.doc} [${n.full}; quick ${n.quick}]`).join('\n')}
`;

/** Parses argv; throws with a readable message on anything unknown or malformed. */
export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  const numberOpts = Object.fromEntries(NUMBERS.map((n) => [n.flag, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-etcd': { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench-results' },
      help: { type: 'boolean', default: false },
      ...numberOpts,
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const quick = values.quick;
  const only = parseOnly(typeof values.only === 'string' ? values.only : undefined);
  const out: Record<string, unknown> = {
    only,
    quick,
    etcd: !values['no-etcd'],
    outDir: typeof values.out === 'string' ? values.out : 'bench-results',
  };
  for (const n of NUMBERS) {
    const raw = (values as Record<string, unknown>)[n.flag];
    if (typeof raw === 'string') {
      const v = Number(raw);
      if (!Number.isFinite(v) || v <= 0)
        throw new Error(`--${n.flag}: expected a positive number, got "${raw}"`);
      out[n.key] = v;
    } else {
      out[n.key] = quick ? n.quick : n.full;
    }
  }
  return Object.freeze(out) as unknown as BenchOptions;
}

function parseOnly(raw: string | undefined): WorkloadName[] {
  if (raw === undefined || raw === '') return [...WORKLOADS];
  const names = raw.split(',').map((s) => s.trim());
  const aliases: Record<string, WorkloadName> = {
    reg: 'registration',
    reads: 'reads',
    read: 'reads',
    agent: 'agent1',
    agents: 'agents50',
  };
  return names.map((n) => {
    const name = aliases[n] ?? n;
    if (!(WORKLOADS as readonly string[]).includes(name)) {
      throw new Error(`--only: unknown workload "${n}" (known: ${WORKLOADS.join(', ')})`);
    }
    return name as WorkloadName;
  });
}
