import { readFileSync } from 'node:fs';
import { InvalidInputError, errorMessage } from '../core/errors';
import { LIMITS } from '../core/safe-yaml';

/** Reads a job file named on the command line, refusing one over the job size limit. */
export function readJobFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(file, `cannot read: ${errorMessage(err)}`, undefined, { cause: err });
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > LIMITS.jobBytes) throw new InvalidInputError(file, `is ${bytes} bytes; the limit is ${LIMITS.jobBytes}`);
  return text;
}
