import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { REFUSAL_CODES } from '../../src/core/refusal-codes';

/**
 * Issue 19: one set of refusal codes for the Lua scripts' answers, the
 * membership check, the bridge and the wire types. The TypeScript side is
 * held to it by its types; this test holds the scripts to it, reading every
 * .lua file and every code it can answer with.
 */
const LUA_DIR = path.join(__dirname, '../../src/fold/lua');
const scripts = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
const source = (file: string): string => readFileSync(path.join(LUA_DIR, file), 'utf8').replace(/--[^\n]*/g, '');

/** Every way a script answers with a refusal: `refusal(...)`, `fail(...)` or a `code = ...` field, with what stands first. */
function refusals(text: string): string[] {
  const calls = [...text.matchAll(/\b(?:refusal|fail)\(\s*([^,)]*)/g)].map((m) => m[1] as string);
  const fields = [...text.matchAll(/\bcode\s*=\s*([^,}\s]+)/g)].map((m) => m[1] as string);
  // The helpers' own definitions and bodies pass the parameter `code` on.
  return [...calls, ...fields].map((a) => a.trim()).filter((a) => a !== 'code');
}

test('the scripts answer only with codes of the shared set, each as a literal', () => {
  const found = new Map<string, string[]>();
  for (const file of scripts) {
    for (const arg of refusals(source(file))) {
      // A code computed at run time could be anything: every refusal names its code literally.
      expect(`${file}: ${arg}`).toMatch(/: '[A-Z_]+'$/);
      const code = arg.slice(1, -1);
      found.set(code, [...(found.get(code) ?? []), file]);
    }
  }
  const unknown = [...found.keys()].filter((c) => !(REFUSAL_CODES as readonly string[]).includes(c));
  expect(unknown).toEqual([]);
  // The scan did find the scripts' refusals (a pattern that matched nothing would pass vacuously).
  expect([...found.keys()].sort()).toEqual(['BAD_BARRIER', 'BAD_TOKEN', 'ENDED', 'INVALID', 'OTHER_CLUSTER', 'UNKNOWN_CLUSTER', 'UNKNOWN_JOB']);
});

test('the scan sees a code outside the set, and one that is not a literal', () => {
  expect(refusals("return refusal('NO_SUCH', 'x')")).toEqual(["'NO_SUCH'"]);
  expect(refusals('return { ok = false, code = reason_code, reason = r }')).toEqual(['reason_code']);
});
