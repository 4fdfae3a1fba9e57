import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The shared fixtures, used as they are: `../shared/fixtures` beside the
 * repository (where CI puts them), or `CS_FIXTURES` to point elsewhere.
 */
export const FIXTURES = process.env.CS_FIXTURES ?? path.resolve(__dirname, '../../../shared/fixtures');
if (!existsSync(FIXTURES)) {
  throw new Error(`the shared fixtures are not at ${FIXTURES}: clone the repository beside shared/ (../shared/fixtures) or set CS_FIXTURES`);
}
export const CLUSTER_DIR = path.join(FIXTURES, 'cluster');
export const JOBS_DIR = path.join(FIXTURES, 'jobs');

export function fixtureJob(name: string): string {
  return readFileSync(path.join(JOBS_DIR, name), 'utf8');
}
