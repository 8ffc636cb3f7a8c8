/**
 * The node's zone and region. Set directly (`MESHREG_ZONE`, `MESHREG_REGION`) or read from a
 * topology file (`MESHREG_TOPOLOGY_FILE`) that `meshreg topology` writes from the Kubernetes Node
 * object's `topology.kubernetes.io/*` labels: the downward API cannot expose node labels, so on
 * Kubernetes an init container of the agent's pod writes the file and the agent reads it at start.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import envVar from 'env-var';
import { at, decodeObject, describe, readObject, readString, type Decoded } from '../proto/validate.js';

/** Where a node is: the EDS locality and the `Meshreg.Zone`/`Region` of `/v1/agent/self`. */
export interface Topology {
  readonly zone: string;
  readonly region: string;
}

/** Kubernetes' well-known node labels (kubernetes.io/docs/reference/labels-annotations-taints). */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const REGION_LABEL = 'topology.kubernetes.io/region';

/** A topology file is a few bytes; anything near this is not one. */
const MAX_TOPOLOGY_FILE_BYTES = 64 * 1024;
const NAME_RULES = { maxLength: 253 } as const;

/** Decodes a topology file: `{"zone": "...", "region": "..."}`, both strings, either may be empty. */
export function decodeTopology(raw: unknown): Decoded<Topology> {
  return decodeObject(raw, (issues, o) => {
    const zone = readString(issues, o['zone'] ?? '', 'zone', NAME_RULES);
    const region = readString(issues, o['region'] ?? '', 'region', NAME_RULES);
    return zone === undefined || region === undefined ? undefined : { zone, region };
  });
}

/** Decodes a Kubernetes Node object down to its topology labels (a missing label is ''). */
export function decodeNodeTopology(raw: unknown): Decoded<Topology> {
  return decodeObject(raw, (issues, o) => {
    const metadata = readObject(issues, o['metadata'], 'metadata');
    if (metadata === undefined) return undefined;
    const labels = metadata['labels'] ?? {};
    if (readObject(issues, labels, 'metadata.labels') === undefined) return undefined;
    const label = (name: string): string | undefined =>
      readString(
        issues,
        (labels as Record<string, unknown>)[name] ?? '',
        at('metadata.labels', name),
        NAME_RULES,
      );
    const zone = label(ZONE_LABEL);
    const region = label(REGION_LABEL);
    return zone === undefined || region === undefined ? undefined : { zone, region };
  });
}

/**
 * Reads a topology file at start (configuration is read once, synchronously). A missing, oversized
 * or malformed file is a configuration error naming the variable and every bad field.
 */
export function readTopologyFile(file: string): Topology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`MESHREG_TOPOLOGY_FILE: cannot read ${file}`, { cause: err });
  }
  if (text.length > MAX_TOPOLOGY_FILE_BYTES)
    throw new Error(`MESHREG_TOPOLOGY_FILE: ${file} is larger than ${String(MAX_TOPOLOGY_FILE_BYTES)} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`MESHREG_TOPOLOGY_FILE: ${file} is not JSON`, { cause: err });
  }
  const decoded = decodeTopology(raw);
  if (!decoded.ok) throw new Error(`MESHREG_TOPOLOGY_FILE: ${file}: ${describe(decoded.errors)}`);
  return decoded.value;
}

/**
 * The agent's topology from its environment: `MESHREG_ZONE`/`MESHREG_REGION`, or the file named by
 * `MESHREG_TOPOLOGY_FILE`. Both ways at once is rejected, naming both, rather than one silently winning.
 */
export function topologyFromEnv(env: NodeJS.ProcessEnv): Topology {
  const e = envVar.from(env);
  const zone = e.get('MESHREG_ZONE').default('').asString();
  const region = e.get('MESHREG_REGION').default('').asString();
  const file = e.get('MESHREG_TOPOLOGY_FILE').default('').asString();
  if (file === '') return { zone, region };
  if (zone !== '' || region !== '')
    throw new Error('MESHREG_TOPOLOGY_FILE conflicts with MESHREG_ZONE/MESHREG_REGION: set one or the other');
  return readTopologyFile(file);
}

/** Writes `topology` to `file` atomically (temp file, fsync, rename): a reader sees the old or the new. */
export async function writeTopologyFile(file: string, topology: Topology): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}.tmp`);
  const handle = await fs.open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(JSON.stringify({ zone: topology.zone, region: topology.region }) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}
