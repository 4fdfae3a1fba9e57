import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The job and cluster fixtures, kept in the project (`test/fixtures`, copied
 * byte for byte from the shared set) so that a lone clone runs its tests.
 */
export const FIXTURES = path.resolve(__dirname, '../fixtures');
export const CLUSTER_DIR = path.join(FIXTURES, 'cluster');
export const JOBS_DIR = path.join(FIXTURES, 'jobs');

export function fixtureJob(name: string): string {
  return readFileSync(path.join(JOBS_DIR, name), 'utf8');
}
