/**
 * Service definitions from a folder of JSON files: the sidecar-container way to register an app that
 * cannot call HTTP. Each `*.json` file holds Consul's format — `{"service": {...}}`, `{"services":
 * [...]}` — or a bare service object. Files are loaded at start and checked every `reloadMs`: a new
 * or changed file (re)registers its services, a removed file or service deregisters. A file that
 * does not parse is reported and its previous services stay as they were (a typo must not
 * deregister a running app).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../proto/runtime/log.js';
import { describe, isRecord } from '../../proto/validate.js';
import { CONSUL_CHECK_RULES, type CheckRules } from '../checks/check-definition.js';
import { decodeServiceDefinition, type RegisterRequest } from '../consul/consul-register.js';
import { foldKeys } from '../consul/consul-fields.js';

export interface DefinitionTarget {
  /** The agent's check policy, applied while decoding the files' checks. */
  readonly checkRules: CheckRules;
  register(req: RegisterRequest): Promise<void>;
  deregister(id: string): Promise<void>;
}

interface FileState {
  readonly digest: string;
  readonly ids: ReadonlySet<string>;
}

export class DefinitionFiles {
  readonly #files = new Map<string, FileState>();
  #timer: NodeJS.Timeout | undefined;
  #scanning = false;

  constructor(
    private readonly dir: string,
    private readonly reloadMs: number,
    private readonly target: DefinitionTarget,
    private readonly log: Logger,
  ) {}

  /** Loads the folder once, then keeps watching it. */
  async start(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await this.scan();
    this.#timer = setInterval(() => {
      void this.scan();
    }, this.reloadMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One pass over the folder. */
  async scan(): Promise<void> {
    if (this.#scanning) return;
    this.#scanning = true;
    try {
      const names = (await fs.readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
      const seen = new Set<string>();
      for (const name of names) {
        const file = path.join(this.dir, name);
        seen.add(file);
        await this.#load(file);
      }
      for (const [file, st] of this.#files) {
        if (seen.has(file)) continue;
        this.#files.delete(file);
        for (const id of st.ids) if (!this.#definedElsewhere(id)) await this.target.deregister(id);
        this.log.info('definition file removed; its services are deregistered', {
          file,
          services: [...st.ids],
        });
      }
    } catch (err) {
      this.log.error('could not scan the definition folder', { dir: this.dir, err });
    } finally {
      this.#scanning = false;
    }
  }

  async #load(file: string): Promise<void> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      return; // Vanished between listing and reading: the next scan sees it gone.
    }
    const digest = createHash('sha256').update(text).digest('hex');
    const old = this.#files.get(file);
    if (old?.digest === digest) return;
    const reqs = parseDefinitions(text, this.target.checkRules);
    if (typeof reqs === 'string') {
      this.log.error('invalid service definition file; keeping what it defined before', {
        file,
        reason: reqs,
      });
      this.#files.set(file, { digest, ids: old?.ids ?? new Set() });
      return;
    }
    const ids = new Set(reqs.map((r) => r.def.id));
    for (const r of reqs) await this.target.register(r);
    for (const id of old?.ids ?? []) if (!ids.has(id)) await this.target.deregister(id);
    this.#files.set(file, { digest, ids });
    this.log.info('loaded service definitions', { file, services: [...ids] });
  }

  #definedElsewhere(id: string): boolean {
    for (const st of this.#files.values()) if (st.ids.has(id)) return true;
    return false;
  }
}

/** Parses one file: the registrations (checks decoded), or a reason naming every problem. */
export function parseDefinitions(
  text: string,
  rules: CheckRules = CONSUL_CHECK_RULES,
): RegisterRequest[] | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return `not valid JSON: ${(err as Error).message}`;
  }
  if (!isRecord(raw)) return 'must be a JSON object';
  const f = foldKeys(raw);
  let list: unknown[];
  if (Array.isArray(f.get('services'))) list = f.get('services') as unknown[];
  else if (isRecord(f.get('service'))) list = [f.get('service')];
  else list = [raw];
  const out: RegisterRequest[] = [];
  const problems: string[] = [];
  list.forEach((item, i) => {
    const d = decodeServiceDefinition(item, rules);
    if (d.ok) out.push(d.value);
    else problems.push(`services[${i}]: ${describe(d.errors)}`);
  });
  return problems.length > 0 ? problems.join('; ') : out;
}
