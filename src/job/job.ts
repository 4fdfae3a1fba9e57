import { InvalidInputError } from '../core/errors';
import { isMapping } from '../core/safe-yaml';
import type { Plain } from '../core/safe-yaml';

/** `if role server:` */
const ROLE_KEY = /^if role (.+)$/;
const ROLE_NAME = /^[A-Za-z0-9_.-]+$/;
/** A program name as lkp-tests names its scripts: no "/", no "..", nothing a shell would read. */
export const PROGRAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

export type Mapping = { [key: string]: Plain };

/** One program a role runs, with its parameters (lkp exports them as environment variables). */
export interface ProgramEntry {
  name: string;
  role: string;
  params: Mapping;
}

export interface RoleBlock {
  role: string;
  /** In YAML order. */
  programs: ProgramEntry[];
  /** Keys of the block that are not programs. */
  vars: Mapping;
}

export interface ParsedJob {
  /** Top-level parameters, minus the `if role` blocks. */
  params: Mapping;
  /** The cluster spec's name, `undefined` when the job has no `cluster:`. */
  cluster: string | undefined;
  /** The job's own `cluster_spec:` mapping, used instead of the file named by `cluster:`. */
  clusterSpec: Mapping | undefined;
  /** In YAML order. */
  roles: RoleBlock[];
}

/**
 * Decides whether a key of a role block is a program. With a scripts tree, a
 * key is a program when `daemon/KEY` or `tests/KEY` exists; without one
 * (`split` previews), a key whose value is empty or a mapping is a program,
 * as every lkp-tests job writes them, and anything else is a variable.
 */
export type ProgramClassifier = (name: string, value: Plain) => boolean;

export const classifyByShape: ProgramClassifier = (_name, value) => value === null || isMapping(value);

export function checkProgramName(name: string, source: string, field: string): string {
  if (!PROGRAM_NAME.test(name) || name.includes('..')) {
    throw new InvalidInputError(source, `program name ${JSON.stringify(name)} may hold only letters, digits, "_", ".", "+" and "-"`, field);
  }
  return name;
}

/** Validates one expanded job document into its parameters and role blocks. */
export function parseJob(doc: Plain, source: string, isProgram: ProgramClassifier = classifyByShape): ParsedJob {
  if (!isMapping(doc)) throw new InvalidInputError(source, 'a job must be a YAML mapping of parameters');
  const params: Mapping = {};
  const roles: RoleBlock[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const m = ROLE_KEY.exec(key);
    if (!m) {
      params[key] = value;
      continue;
    }
    const role = (m[1] ?? '').trim();
    if (!ROLE_NAME.test(role)) throw new InvalidInputError(source, `role name ${JSON.stringify(role)} may hold only letters, digits, "_", "." and "-"`, key);
    if (value !== null && !isMapping(value)) throw new InvalidInputError(source, 'a role block must be a mapping of programs and variables', key);
    const block: RoleBlock = { role, programs: [], vars: {} };
    for (const [name, v] of Object.entries(value ?? {})) {
      if (isProgram(name, v)) {
        checkProgramName(name, source, `${key}.${name}`);
        if (v !== null && !isMapping(v)) throw new InvalidInputError(source, 'program parameters must be a mapping', `${key}.${name}`);
        block.programs.push({ name, role, params: v ?? {} });
      } else {
        block.vars[name] = v;
      }
    }
    roles.push(block);
  }
  const cluster = params.cluster;
  if (cluster !== undefined && cluster !== null && typeof cluster !== 'string') {
    throw new InvalidInputError(source, 'must be the name of a cluster spec', 'cluster');
  }
  // Compass-CI reads a job's own cluster_spec before the file named by cluster:
  const clusterSpec = params.cluster_spec;
  if (clusterSpec !== undefined && clusterSpec !== null && !isMapping(clusterSpec)) {
    throw new InvalidInputError(source, 'must be a cluster spec mapping (nodes: {HOST: {roles: [...]}})', 'cluster_spec');
  }
  delete params.cluster_spec;
  return { params, cluster: cluster ?? undefined, clusterSpec: clusterSpec ?? undefined, roles };
}
