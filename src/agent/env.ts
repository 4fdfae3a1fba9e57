import type { Plain } from '../core/safe-yaml';
import type { Mapping } from '../job/job';

/**
 * The environment a program runs with, by lkp-tests' convention: every job
 * parameter, role variable and program parameter becomes a variable of the
 * same name (characters a shell name cannot hold become `_`), then what
 * `roles_ip` answered (`server=IP`, `direct_server_ips=IPS`) and the node's
 * own facts. Later sources win.
 */

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `fio-setup-basic` -> `fio_setup_basic`; undefined when nothing usable is left. */
export function envName(key: string): string | undefined {
  let name = key.replace(/[^A-Za-z0-9_]/g, '_');
  if (/^[0-9]/.test(name)) name = `_${name}`;
  return NAME.test(name) && name.length <= 128 ? name : undefined;
}

/** A scalar or a list of scalars as one string (lists joined by a space, as lkp joins them); undefined for mappings. */
export function envValue(value: Plain): string | undefined {
  if (value === null) return '';
  if (Array.isArray(value)) {
    const parts = value.map((v) => (v === null || typeof v !== 'object' ? String(v ?? '') : undefined));
    return parts.every((p) => p !== undefined) ? parts.join(' ') : undefined;
  }
  if (typeof value === 'object') return undefined;
  return String(value);
}

function put(env: Record<string, string>, key: string, value: Plain): void {
  const name = envName(key);
  const text = envValue(value);
  if (name !== undefined && text !== undefined && !text.includes('\0')) env[name] = text;
}

/** Variables from a mapping; one level of nested mappings is flattened (`iperf: {protocol: tcp}` gives `protocol`). */
export function mappingEnv(m: Mapping): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v)) put(env, k2, v2);
    } else put(env, k, v);
  }
  return env;
}

/** `server=1.2.3.4` / `direct_server_ips=...` lines -> variables (lines that are not NAME=VALUE are skipped). */
export function rolesIpEnv(lines: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const name = envName(line.slice(0, eq));
    if (name !== undefined) env[name] = line.slice(eq + 1);
  }
  return env;
}

export interface EnvParts {
  base: NodeJS.ProcessEnv;
  params: Mapping;
  vars: Mapping;
  programParams: Mapping;
  rolesIp: Record<string, string>;
  node: Record<string, string>;
}

export function programEnv(p: EnvParts): NodeJS.ProcessEnv {
  return { ...p.base, ...mappingEnv(p.params), ...mappingEnv(p.vars), ...mappingEnv(p.programParams), ...p.rolesIp, ...p.node };
}
