import { checkToken } from '../bus/subjects';
import { InvalidInputError } from '../core/errors';

/** A cluster id given on the command line: one subject token, else exit 2 naming it. */
export function checkClusterId(value: string, what = 'cluster'): string {
  try {
    return checkToken(value, 'cluster id');
  } catch {
    throw new InvalidInputError(what, `${JSON.stringify(value)} is not a cluster id`);
  }
}
