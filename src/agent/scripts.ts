import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidInputError } from '../core/errors';
import { PROGRAM_NAME } from '../job/job';
import type { Mapping, ProgramEntry } from '../job/job';

export type ProgramKind = 'daemon' | 'test';

/** A program of the node job, found in the scripts tree. */
export interface ResolvedProgram {
  name: string;
  role: string;
  kind: ProgramKind;
  /** Absolute path of the script, inside the tree. */
  path: string;
  params: Mapping;
}

export interface ResolvedPrograms {
  daemons: ResolvedProgram[];
  tests: ResolvedProgram[];
  /** Entries that are in neither `daemon/` nor `tests/`: lkp takes them as variables. */
  variables: ProgramEntry[];
}

/** Checks that DIR is a directory and returns its real path. */
export function scriptsRoot(dir: string): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    throw new InvalidInputError('--scripts', `${dir} does not exist`);
  }
  if (!statSync(real).isDirectory()) throw new InvalidInputError('--scripts', `${dir} is not a directory`);
  return real;
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Looks a program name up as lkp-tests does: `daemon/NAME` is a daemon,
 * `tests/NAME` a test. The name is checked again here (no `/`, no `..`), and
 * the resolved file, symlinks followed, must stay inside the tree and be an
 * executable regular file. Returns undefined when neither file exists.
 */
export function findProgram(root: string, name: string): { kind: ProgramKind; path: string } | undefined {
  if (!PROGRAM_NAME.test(name) || name.includes('..')) {
    throw new InvalidInputError('node job', `program name ${JSON.stringify(name)} may hold only letters, digits, "_", ".", "+" and "-"`, 'programs');
  }
  for (const [kind, dir] of [
    ['daemon', 'daemon'],
    ['test', 'tests'],
  ] as const) {
    const candidate = path.join(root, dir, name);
    let real: string;
    try {
      real = realpathSync(candidate);
    } catch {
      continue;
    }
    if (!inside(root, real)) throw new InvalidInputError('node job', `${dir}/${name} resolves to ${real}, outside the scripts tree ${root}`, 'programs');
    if (!statSync(real).isFile()) throw new InvalidInputError('node job', `${dir}/${name} in ${root} is not a regular file`, 'programs');
    try {
      accessSync(real, constants.X_OK);
    } catch {
      throw new InvalidInputError('node job', `${dir}/${name} in ${root} is not executable (chmod +x it)`, 'programs');
    }
    return { kind, path: real };
  }
  return undefined;
}

/** Sorts the node job's programs into daemons and tests, keeping YAML order within each. */
export function resolvePrograms(root: string, programs: readonly ProgramEntry[]): ResolvedPrograms {
  const out: ResolvedPrograms = { daemons: [], tests: [], variables: [] };
  for (const p of programs) {
    const found = findProgram(root, p.name);
    if (!found) {
      out.variables.push(p);
      continue;
    }
    const rp: ResolvedProgram = { name: p.name, role: p.role, kind: found.kind, path: found.path, params: p.params };
    (found.kind === 'daemon' ? out.daemons : out.tests).push(rp);
  }
  if (out.daemons.length === 0 && out.tests.length === 0) {
    const names = programs.map((p) => p.name).join(', ') || 'none';
    throw new InvalidInputError('node job', `no program of this node (${names}) is in daemon/ or tests/ of ${root}`, 'programs');
  }
  return out;
}
