/**
 * A strict reader of JUnit XML for tests: a small well-formedness parser
 * (elements, quoted attributes, the five entities and character references,
 * one root, every tag closed in order) and the JUnit structure CI tools read
 * (testsuites > testsuite > testcase > failure | error | skipped, with counts
 * that match). No XML library is in node_modules, so this one throws on
 * anything a real parser would refuse.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_][\w.-]*/;

function decode(s: string, at: number): string {
  return s.replace(/&([^;]*);/g, (_m, e: string) => {
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (named[e] !== undefined) return named[e];
    const n = /^#x([0-9a-fA-F]+)$/.exec(e) ?? /^#(\d+)$/.exec(e);
    if (n) return String.fromCodePoint(parseInt(n[1] as string, e.startsWith('#x') ? 16 : 10));
    throw new Error(`unknown entity &${e}; near offset ${at}`);
  });
}

export function parseXml(xml: string): XmlElement {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`not well-formed XML at offset ${i}: ${why}: ${JSON.stringify(xml.slice(i, i + 40))}`);
  };
  const skipWs = (): void => {
    while (i < xml.length && /\s/.test(xml[i] as string)) i++;
  };
  if (xml.startsWith('<?xml')) {
    const end = xml.indexOf('?>');
    if (end < 0) fail('unterminated XML declaration');
    i = end + 2;
  }
  const element = (): XmlElement => {
    if (xml[i] !== '<') fail('expected <');
    i++;
    const m = NAME.exec(xml.slice(i));
    if (!m) return fail('bad element name');
    const el: XmlElement = { name: m[0], attrs: {}, children: [], text: '' };
    i += m[0].length;
    for (;;) {
      skipWs();
      if (xml.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (xml[i] === '>') {
        i++;
        break;
      }
      const a = NAME.exec(xml.slice(i));
      if (!a) fail('bad attribute name');
      i += (a as RegExpExecArray)[0].length;
      if (xml[i] !== '=') fail('expected =');
      i++;
      const q = xml[i];
      if (q !== '"' && q !== "'") fail('attribute value not quoted');
      const end = xml.indexOf(q as string, i + 1);
      if (end < 0) fail('unterminated attribute value');
      const raw = xml.slice(i + 1, end);
      if (raw.includes('<')) fail('< in an attribute value');
      const name = (a as RegExpExecArray)[0];
      if (name in el.attrs) fail(`duplicate attribute ${name}`);
      el.attrs[name] = decode(raw, i);
      i = end + 1;
    }
    for (;;) {
      const lt = xml.indexOf('<', i);
      if (lt < 0) fail(`element ${el.name} not closed`);
      const text = xml.slice(i, lt);
      if (/&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)/.test(text)) fail('bare & in text');
      el.text += decode(text, i);
      i = lt;
      if (xml.startsWith('</', i)) {
        i += 2;
        if (!xml.startsWith(`${el.name}`, i)) fail(`closing tag does not match <${el.name}>`);
        i += el.name.length;
        skipWs();
        if (xml[i] !== '>') fail('expected >');
        i++;
        return el;
      }
      el.children.push(element());
    }
  };
  skipWs();
  const root = element();
  skipWs();
  if (i !== xml.length) fail('content after the root element');
  return root;
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
