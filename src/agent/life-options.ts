import type { CommandRunner } from './network';
import type { Output } from './output';
import type { ProgramRunner } from './runner';

/** How a node's life (life.ts) runs its programs, where it writes, and when it gives up. */
export interface LifeOptions {
  /** Real path of the scripts tree (see scriptsRoot). */
  scriptsRoot: string;
  runner: ProgramRunner;
  output: Output;
  /** The address this node reports. Default: the first address of `hostname -I`. */
  ip?: string;
  /** Append `IP ROLE` lines to this hosts file after roles_ip (`--etc-hosts`). Default: off. */
  etcHosts?: string;
  /** Runs `ip` and `hostname`. Default: execFile. */
  exec?: CommandRunner;
  /** The environment programs start from. Default: this process's. */
  baseEnv?: NodeJS.ProcessEnv;
  /** Aborting it ends the life: the node reports `abort` with the signal's reason. */
  signal?: AbortSignal;
  /** How long a stopped program gets between SIGTERM and SIGKILL, ms. Default 3000. */
  stopGraceMs?: number;
  /** How long the life waits, at its end, for its `failed` / `abort` report to be accepted, ms. Default 15 000. */
  reportGraceMs?: number;
}
