import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The shared fixtures, used as they are: `../shared/fixtures` beside the repository. */
export const FIXTURES = path.resolve(__dirname, '../../../shared/fixtures');
export const CLUSTER_DIR = path.join(FIXTURES, 'cluster');
export const JOBS_DIR = path.join(FIXTURES, 'jobs');

export function fixtureJob(name: string): string {
  return readFileSync(path.join(JOBS_DIR, name), 'utf8');
}
