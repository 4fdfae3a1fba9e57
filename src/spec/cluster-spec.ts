import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { InvalidInputError, NotFoundError, errorMessage } from '../core/errors';
import { LIMITS, isMapping, loadYamlDocuments } from '../core/safe-yaml';
import type { Plain } from '../core/safe-yaml';

/** Names that mean "one machine runs every role itself" (DESIGN §2). */
export const LOCALHOST_SPECS = new Set(['cs-localhost']);

/** At most this many hosts in one spec: more than a /24 direct network can address. */
export const MAX_HOSTS = 254;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** The keys cluster-sync reads; others (`bmc_ip`, comments, ...) are ignored as Compass-CI ignores them, and named in `warnings`. */
const HOST_KEYS = new Set(['roles', 'macs']);
const SPEC_KEYS = new Set(['switch', 'ip0', 'nodes']);

const HostSchema = z.object({
  roles: z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a role is letters, digits, "_", "." or "-"')).min(1, 'a host needs at least one role'),
  macs: z.array(z.string().regex(MAC, 'a MAC address looks like ec:f4:bb:cb:7b:92')).optional(),
});

const SpecSchema = z.object({
  switch: z.union([z.string(), z.number()]).optional(),
  ip0: z.number().int().min(1).max(254).default(1),
  nodes: z
    .record(z.string(), HostSchema)
    .refine((n) => Object.keys(n).length > 0, 'a cluster needs at least one host')
    .refine((n) => Object.keys(n).length <= MAX_HOSTS, `a cluster has at most ${MAX_HOSTS} hosts`),
});

export interface ClusterHost {
  name: string;
  roles: string[];
  macs: string[];
}

export interface ClusterSpec {
  name: string;
  /** True for `cs-localhost` (or no `cluster:`): one machine runs every role and never waits. */
  localhost: boolean;
  switch: string | undefined;
  ip0: number;
  /** In the order the spec lists them. */
  hosts: ClusterHost[];
  /** What was ignored (keys cluster-sync does not use), one line each. */
  warnings: string[];
}

/** Checks a spec name before it is joined to a directory: no path tricks. */
export function checkSpecName(name: string, source = 'job'): string {
  if (!NAME.test(name) || name.includes('..')) {
    throw new InvalidInputError(source, `cluster spec name ${JSON.stringify(name)} must be a plain file name (letters, digits, ".", "_", "-")`, 'cluster');
  }
  return name;
}

/** Validates a loaded spec document, current (`nodes:`) or legacy (hosts at top level) form. */
export function parseClusterSpec(doc: Plain, name: string, source = `cluster spec ${name}`): ClusterSpec {
  if (!isMapping(doc)) throw new InvalidInputError(source, 'a cluster spec must be a YAML mapping of hosts');
  let current: Record<string, Plain> = doc;
  const ignored: string[] = [];
  if (!('nodes' in doc)) {
    // Legacy form: every key but the known settings is a host; a key whose value is no mapping is no host.
    const nodes: Record<string, Plain> = {};
    current = {};
    for (const [k, v] of Object.entries(doc)) {
      if (k === 'switch' || k === 'ip0') current[k] = v;
      else if (isMapping(v)) nodes[k] = v;
      else ignored.push(k);
    }
    current.nodes = nodes;
  } else {
    ignored.push(...Object.keys(doc).filter((k) => !SPEC_KEYS.has(k)));
  }
  const warnings = ignored.length > 0 ? [`${source}: ignored key${ignored.length > 1 ? 's' : ''} ${ignored.join(', ')} (not used by cluster-sync)`] : [];
  if (isMapping(current.nodes)) {
    for (const [host, h] of Object.entries(current.nodes)) {
      const extra = isMapping(h) ? Object.keys(h).filter((k) => !HOST_KEYS.has(k)) : [];
      if (extra.length > 0) warnings.push(`${source}: host ${host}: ignored key${extra.length > 1 ? 's' : ''} ${extra.join(', ')} (not used by cluster-sync)`);
    }
  }
  // Host names are checked here rather than in the schema, whose message for a bad record key names no rule.
  if (isMapping(current.nodes)) {
    for (const host of Object.keys(current.nodes)) {
      if (!NAME.test(host)) throw new InvalidInputError(source, 'a host name is letters, digits, ".", "_" or "-" (at most 253)', `nodes.${JSON.stringify(host)}`);
    }
  }
  const parsed = SpecSchema.safeParse(current);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidInputError(source, issue?.message ?? 'invalid', issue?.path.join('.') || undefined);
  }
  const hosts = Object.entries(parsed.data.nodes).map(([hostName, h]) => ({
    name: hostName,
    roles: h.roles,
    macs: (h.macs ?? []).map((m) => m.toLowerCase()),
  }));
  return {
    name,
    localhost: LOCALHOST_SPECS.has(name),
    switch: parsed.data.switch === undefined ? undefined : String(parsed.data.switch),
    ip0: parsed.data.ip0,
    hosts,
    warnings,
  };
}

/** The spec for a job without `cluster:`: one local machine with the job's roles. */
export function localhostSpec(roles: string[]): ClusterSpec {
  return { name: 'cs-localhost', localhost: true, switch: undefined, ip0: 1, hosts: [{ name: 'localhost', roles, macs: [] }], warnings: [] };
}

/** Reads `DIR/NAME` the way lkp-tests' `cluster/` directory is laid out. */
/** A spec the directory does not hold. `spec` is the name asked for, so a server can answer without showing its paths. */
export class SpecNotFoundError extends NotFoundError {
  constructor(
    readonly spec: string,
    dir: string,
  ) {
    super(`cluster spec ${JSON.stringify(spec)} not found in ${dir}`);
  }
}

export function loadClusterSpec(name: string, dir: string): ClusterSpec {
  checkSpecName(name);
  const file = path.join(dir, name);
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new NotFoundError(`cluster spec ${name}: ${file} is not a file`);
    if (st.size > LIMITS.specBytes) throw new InvalidInputError(`cluster spec ${file}`, `is ${st.size} bytes; the limit is ${LIMITS.specBytes}`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof InvalidInputError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SpecNotFoundError(name, dir);
    throw new NotFoundError(`cluster spec ${JSON.stringify(name)} cannot be read from ${dir}: ${errorMessage(err)}`);
  }
  return parseClusterSpecText(text, name, file);
}

export function parseClusterSpecText(text: string, name: string, source = `cluster spec ${name}`): ClusterSpec {
  const docs = loadYamlDocuments(text, source, LIMITS.specBytes);
  if (docs.length !== 1 || docs[0] === undefined) throw new InvalidInputError(source, `expected one YAML document, found ${docs.length}`);
  return parseClusterSpec(docs[0], name, source);
}
