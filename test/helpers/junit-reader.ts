import { XMLParser, XMLValidator } from 'fast-xml-parser';

/**
 * A strict reader of JUnit XML for tests: fast-xml-parser's validator refuses
 * what is not well-formed XML, and the JUnit structure CI tools read
 * (testsuites > testsuite > testcase > failure | error | skipped, with counts
 * that match) is checked below.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** fast-xml-parser's ordered form: `{ tag: [children], ':@': { attrs } }` or `{ '#text': text }`. */
type Ordered = Record<string, unknown>;

function toElement(node: Ordered): XmlElement | undefined {
  const name = Object.keys(node).find((k) => k !== ':@' && k !== '#text');
  if (name === undefined || name.startsWith('?')) return undefined;
  const kids = (node[name] as Ordered[] | undefined) ?? [];
  const attrs = Object.fromEntries(Object.entries((node[':@'] as Record<string, unknown> | undefined) ?? {}).map(([k, v]) => [k, String(v)]));
  const children = kids.map(toElement).filter((e): e is XmlElement => e !== undefined);
  const text = kids
    .filter((k) => '#text' in k)
    .map((k) => String(k['#text']))
    .join('');
  return { name, attrs, children, text };
}

export function parseXml(xml: string): XmlElement {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`not well-formed XML at line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg}`);
  // The validator lets a bare `&` through; an XML parser such as a CI server's refuses it.
  const bare = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(xml);
  if (bare) throw new Error(`not well-formed XML at offset ${bare.index}: a bare "&"`);
  const parser = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', parseAttributeValue: false, parseTagValue: false, trimValues: false });
  const roots = (parser.parse(xml) as Ordered[]).map(toElement).filter((e): e is XmlElement => e !== undefined);
  if (roots.length !== 1) throw new Error(`not well-formed XML: ${roots.length} root elements`);
  return roots[0] as XmlElement;
}

export interface JUnitCase {
  suite: string;
  classname: string;
  name: string;
  time: number;
  outcome: 'passed' | 'failure' | 'error' | 'skipped';
  message?: string;
}

export interface JUnitReport {
  suites: { name: string; tests: number; failures: number; errors: number; skipped: number; properties: Record<string, string> }[];
  cases: JUnitCase[];
}

/** Reads JUnit XML as CI tools do, checking every count and required attribute. */
export function readJUnit(xml: string): JUnitReport {
  const root = parseXml(xml);
  if (root.name !== 'testsuites') throw new Error(`JUnit root is <${root.name}>, not <testsuites>`);
  const report: JUnitReport = { suites: [], cases: [] };
  const num = (el: XmlElement, a: string): number => {
    const v = el.attrs[a];
    if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) throw new Error(`<${el.name} ${el.attrs.name ?? ''}> attribute ${a}=${JSON.stringify(v)} is not a number`);
    return Number(v);
  };
  for (const s of root.children) {
    if (s.name !== 'testsuite') throw new Error(`<${s.name}> inside <testsuites>`);
    const properties: Record<string, string> = {};
    const cases: JUnitCase[] = [];
    for (const c of s.children) {
      if (c.name === 'properties') {
        for (const p of c.children) properties[p.attrs.name ?? ''] = p.attrs.value ?? '';
        continue;
      }
      if (c.name !== 'testcase') throw new Error(`<${c.name}> inside <testsuite>`);
      if (!c.attrs.name || c.attrs.classname === undefined) throw new Error('testcase without name or classname');
      if (c.children.length > 1) throw new Error(`testcase ${c.attrs.name} has ${c.children.length} outcomes`);
      const o = c.children[0];
      if (o && !['failure', 'error', 'skipped'].includes(o.name)) throw new Error(`<${o.name}> inside <testcase>`);
      cases.push({
        suite: s.attrs.name ?? '',
        classname: c.attrs.classname,
        name: c.attrs.name,
        time: num(c, 'time'),
        outcome: (o?.name ?? 'passed') as JUnitCase['outcome'],
        message: o?.attrs.message,
      });
    }
    const suite = { name: s.attrs.name ?? '', tests: num(s, 'tests'), failures: num(s, 'failures'), errors: num(s, 'errors'), skipped: num(s, 'skipped'), properties };
    const count = (o: string): number => cases.filter((c) => c.outcome === o).length;
    if (suite.tests !== cases.length || suite.failures !== count('failure') || suite.errors !== count('error') || suite.skipped !== count('skipped')) {
      throw new Error(`suite ${suite.name}: counts ${JSON.stringify(suite)} do not match its ${cases.length} test cases`);
    }
    report.suites.push(suite);
    report.cases.push(...cases);
  }
  return report;
}
