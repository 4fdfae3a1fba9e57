import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/processes';

/** Every .ts file under `dir`, relative to the repository. */
function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir)).flatMap((name) => {
    const rel = path.join(dir, name);
    if (statSync(path.join(ROOT, rel)).isDirectory()) return tsFiles(rel);
    return rel.endsWith('.ts') ? [rel] : [];
  });
}

/**
 * The arrows between the folders run one way (docs/layout.md): workers/ builds on src/, and inside
 * src/ only the command line (the composition root) starts workers. A module of src/ that imported
 * workers/ would also make the library's root entry load the workers (test/deploy/library.test.ts).
 */
test('no module of src/ but the command line imports workers/', () => {
  const offenders = tsFiles('src')
    .filter((f) => !f.startsWith(path.join('src', 'cli') + path.sep))
    .filter((f) => /from '(\.\.\/)+workers\//.test(readFileSync(path.join(ROOT, f), 'utf8')));
  expect(offenders).toEqual([]);
});
