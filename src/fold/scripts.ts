import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';

/**
 * Loads the Lua scripts once, resolving `--@include FILE` lines against the
 * same folder, and registers them on an ioredis client (EVALSHA, with EVAL
 * as the fallback when a restarted Redis has forgotten them).
 */
const LUA_DIR = path.join(__dirname, 'lua');

const SCRIPTS = {
  // The number of keys is the call's first argument: 8 + 3 per cluster of the batch.
  csFoldBatch: { file: 'fold-batch.lua', keys: undefined },
  csTimeout: { file: 'timeout.lua', keys: 9 },
  csCreate: { file: 'create.lua', keys: 9 },
  csClaimSubmit: { file: 'claim-submit.lua', keys: 1 },
  csEndCluster: { file: 'end-cluster.lua', keys: 8 },
  // Admission (src/admission): the machines and the all-or-nothing hand-out of DESIGN §9.
  csAdmitTake: { file: 'admit-take.lua', keys: 8 },
  csAdmitEnqueue: { file: 'admit-enqueue.lua', keys: 8 },
  csAdmitFifo: { file: 'admit-fifo.lua', keys: 8 },
  csAdmitReap: { file: 'admit-reap.lua', keys: 8 },
  csAdmitExpire: { file: 'admit-expire.lua', keys: 10 },
} as const;

function readLua(file: string, seen = new Set<string>()): string {
  if (seen.has(file)) return '';
  seen.add(file);
  const text = readFileSync(path.join(LUA_DIR, file), 'utf8');
  return text.replace(/^--@include (\S+)\s*$/gm, (_, inc: string) => readLua(inc, seen));
}

const cache = new Map<string, string>();
export function luaSource(file: string): string {
  let src = cache.get(file);
  if (src === undefined) {
    src = readLua(file);
    cache.set(file, src);
  }
  return src;
}

export interface ScriptCommands {
  csFoldBatch(numberOfKeys: number, ...args: (string | number)[]): Promise<string>;
  csTimeout(...args: (string | number)[]): Promise<string>;
  csCreate(...args: (string | number)[]): Promise<[number, string]>;
  csClaimSubmit(submitting: string, cid: string, who: SubmitEnd): Promise<SubmitEnd | 'gone'>;
  csEndCluster(...args: (string | number)[]): Promise<string>;
  csAdmitTake(...args: (string | number)[]): Promise<string>;
  csAdmitEnqueue(...args: (string | number)[]): Promise<number>;
  csAdmitFifo(...args: (string | number)[]): Promise<number>;
  csAdmitReap(...args: (string | number)[]): Promise<string>;
  csAdmitExpire(...args: (string | number)[]): Promise<string>;
}

/** How a cluster's submit ends (claim-submit.lua): its node jobs queued, or removed by the reaper. */
export type SubmitEnd = 'queued' | 'reaper';

export type ScriptedRedis = Redis & ScriptCommands;

export function withScripts(redis: Redis): ScriptedRedis {
  for (const [name, s] of Object.entries(SCRIPTS)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: s.keys, lua: luaSource(s.file) });
  }
  return redis as ScriptedRedis;
}
