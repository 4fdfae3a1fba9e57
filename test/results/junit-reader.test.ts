import { readJUnit } from '../helpers/junit-reader';

/** The reader the results tests trust must refuse what a CI dashboard would refuse. */
const GOOD = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="cluster-sync" tests="2" failures="1" errors="0" skipped="0" time="1.5">
  <testsuite name="cluster cs-1" tests="2" failures="1" errors="0" skipped="0" time="1.5">
    <properties><property name="verdict" value="failed"/></properties>
    <testcase classname="cs-1.srv" name="daemon d1 on cs-1 (server)" time="1.000"/>
    <testcase classname="cs-2.cli" name="test t on cs-2 (client) &amp; more" time="0.500"><failure message="exit 1">exit 1</failure></testcase>
  </testsuite>
</testsuites>`;

test('a well-formed JUnit report is read: suites, cases, outcomes, properties, entities', () => {
  const r = readJUnit(GOOD);
  expect(r.suites).toEqual([{ name: 'cluster cs-1', tests: 2, failures: 1, errors: 0, skipped: 0, properties: { verdict: 'failed' } }]);
  expect(r.cases.map((c) => [c.name, c.outcome])).toEqual([
    ['daemon d1 on cs-1 (server)', 'passed'],
    ['test t on cs-2 (client) & more', 'failure'],
  ]);
});

test.each([
  ['an unclosed tag', GOOD.replace('</testsuite>', '')],
  ['a bare ampersand', GOOD.replace('&amp;', '&')],
  ['an unquoted attribute', GOOD.replace('time="1.000"', 'time=1.000')],
  [
    'counts that do not match the cases',
    GOOD.replace('tests="2" failures="1" errors="0" skipped="0" time="1.5">\n    <properties>', 'tests="3" failures="1" errors="0" skipped="0" time="1.5">\n    <properties>'),
  ],
  ['a test case with two outcomes', GOOD.replace('<failure message="exit 1">exit 1</failure>', '<failure message="a"/><error message="b"/>')],
])('refused: %s', (_what, xml) => {
  expect(() => readJUnit(xml)).toThrow();
});
