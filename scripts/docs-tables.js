// Produces docs/results/faults-and-hostile-input.md, the table of faults survived and hostile
// input refused, from a real run of the fault tests: the files `npm run test:faults` runs
// (read from package.json, so the two lists cannot drift), through the jest reporter
// test/faults/summary-reporter.js, which joins each test's notes with its result.
//   npm run build && node scripts/docs-tables.js [more jest arguments, e.g. test/hostile]
// With file arguments, only those run (the table then says which). Exits with jest's code;
// the file is written only when every test passed, so a failing run never lands in the docs.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const out = path.join(root, 'docs', 'results', 'faults-and-hostile-input.md');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const faults = /\bjest (.+)$/.exec(pkg.scripts['test:faults'] ?? '');
if (!faults) throw new Error('package.json: scripts["test:faults"] must end with "jest FILES..."');
const asked = process.argv.slice(2);
const files = asked.length > 0 ? asked : faults[1].split(/\s+/);

const table = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cs-docs-tables-')), 'table.md');
const jest = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, CS_FAULT_TABLE_OUT: table },
});
if (jest.status !== 0 || !fs.existsSync(table)) {
  process.stderr.write(`docs-tables: jest exited ${jest.status}; ${out} left as it was\n`);
  process.exit(jest.status || 1);
}
const cores = os.cpus().length;
const body = fs.readFileSync(table, 'utf8').trim();
const text = [
  '# Faults survived and hostile input refused',
  '',
  '<!-- Produced by scripts/docs-tables.js from a test run; do not edit by hand. -->',
  '',
  `Produced by \`node scripts/docs-tables.js${asked.length ? ` ${asked.join(' ')}` : ''}\` on ${new Date().toISOString().slice(0, 16)} UTC, ` +
    (asked.length ? 'from these files only (without arguments it runs every file of `npm run test:faults`), ' : 'from every file of `npm run test:faults`, ') +
    `Node.js ${process.version}, ${cores} core${cores === 1 ? '' : 's'} (load average ${os.loadavg()[0].toFixed(1)} at the end). ` +
    "One row per note a test made (`test/faults/summary.ts`), or the test's title when it made none. " +
    'How to read it and regenerate it: [Testing](../testing.md#faults-survived-and-hostile-input-refused).',
  '',
  body,
  '',
].join('\n');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, text);
fs.rmSync(path.dirname(table), { recursive: true, force: true });
process.stdout.write(`docs-tables: wrote ${path.relative(root, out)}\n`);
