// A jest reporter that prints the fault and hostile-input table:
// "fault or input | what happened | pass", one row per note() a test made
// (test/faults/summary.ts), joined with that test's result. Tests under
// test/faults, test/hostile, test/engine/bad-reports and
// test/agent/agent-process without a note get a row from their title. Prints nothing when no such test ran.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// Fault 5 (a node agent killed mid-test) lives with the agent's tests: agent-process.test.ts.
const COVERED = /[\\/]test[\\/](faults|hostile)[\\/]|[\\/]test[\\/]engine[\\/]bad-reports\.test\.ts$|[\\/]test[\\/]agent[\\/]agent-process\.test\.ts$/;

class FaultSummaryReporter {
  constructor(globalConfig, options = {}) {
    this.file = path.join(os.tmpdir(), `cs-fault-summary-${process.pid}-${Date.now()}.jsonl`);
    fs.writeFileSync(this.file, '');
    // Test workers are forked after reporters are set up, so they inherit this.
    process.env.CS_FAULT_SUMMARY = this.file;
    // Where to write the table as well (scripts/docs-tables.js sets CS_FAULT_TABLE_OUT).
    this.output = options.output ?? process.env.CS_FAULT_TABLE_OUT;
    this.results = [];
  }

  onTestResult(test, testResult) {
    if (!COVERED.test(testResult.testFilePath)) return;
    for (const r of testResult.testResults) this.results.push({ file: testResult.testFilePath, test: r.fullName, title: r.title, status: r.status });
    if (testResult.testExecError) this.results.push({ file: testResult.testFilePath, test: '', title: `${path.basename(testResult.testFilePath)} could not run`, status: 'failed' });
  }

  onRunComplete() {
    let notes = [];
    try {
      notes = fs
        .readFileSync(this.file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      fs.rmSync(this.file, { force: true });
    } catch {
      /* no notes */
    }
    if (this.results.length === 0) return;
    const rows = [];
    for (const r of this.results) {
      const mine = notes.filter((n) => n.file === r.file && n.test === r.test);
      const pass = r.status === 'passed' ? 'pass' : r.status === 'failed' ? 'FAIL' : r.status;
      if (mine.length === 0) rows.push([r.title, r.status === 'failed' ? 'test failed before it noted what happened' : '', pass]);
      for (const n of mine) rows.push([n.input, n.happened, pass]);
    }
    const cell = (s) => String(s).replace(/\|/g, '\\|');
    const lines = [
      '',
      `Faults and hostile input: ${rows.filter((r) => r[2] === 'pass').length} of ${rows.length} pass`,
      '',
      '| fault or input | what happened | pass |',
      '| --- | --- | --- |',
      ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
      '',
    ];
    const text = lines.join('\n');
    process.stdout.write(`${text}\n`);
    if (this.output) fs.writeFileSync(this.output, text);
  }
}

module.exports = FaultSummaryReporter;
