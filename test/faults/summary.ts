import { appendFileSync } from 'node:fs';

/**
 * One row of the fault and hostile-input summary: what was done to the
 * system and what it did, as the test observed it. The jest reporter beside
 * this file (summary-reporter.js) joins the rows with each test's pass or
 * fail and prints the table; without that reporter, notes go nowhere.
 */
export function note(input: string, happened: string): void {
  const file = process.env.CS_FAULT_SUMMARY;
  if (!file) return;
  const state = expect.getState();
  const row = { file: state.testPath ?? '', test: state.currentTestName ?? '', input, happened: happened.replace(/\s+/g, ' ').trim() };
  appendFileSync(file, `${JSON.stringify(row)}\n`);
}
