import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * A model of `docker build` for a test machine without a Docker engine: the
 * files each stage of a Dockerfile holds, derived from its own steps. COPY
 * from the build context (minus .dockerignore) or from an earlier stage,
 * WORKDIR, and the RUN steps this project uses: `npm ci` (node_modules),
 * `npm run build` (tsc's output for the TypeScript the stage holds, plus the
 * assets scripts/copy-assets.js copies), `apt-get install` (packages). A RUN
 * step the model does not know fails the test, so it cannot silently agree.
 */
export interface Stage {
  name: string | undefined;
  base: string;
  workdir: string;
  /** Absolute paths of the files the stage holds. */
  files: Set<string>;
  /** Packages `apt-get install` added. */
  packages: string[];
  runs: string[];
  entrypoint: string[] | undefined;
  user: string | undefined;
}

/** Dockerfile instructions: continuation lines joined, comments dropped. */
export function instructions(text: string): { op: string; args: string }[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l);
      if (!m) throw new Error(`cannot read Dockerfile line: ${l}`);
      return { op: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ') };
    });
}

/** A .dockerignore matcher (Docker's rules: patterns from the context root, `**` any depth, `!` re-includes, a match on a folder holds its contents). */
export function dockerignore(text: string): (rel: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pat = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      const re = pat
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*')
        .replace(/\.\*\//g, '(.*/)?');
      return { negate, re: new RegExp(`^${re}(/.*)?$`) };
    });
  return (rel) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(rel)) ignored = !r.negate;
    return ignored;
  };
}

/** Every file of the build context, relative to `root`, that .dockerignore lets through. */
export function contextFiles(root: string): string[] {
  const ignoreFile = path.join(root, '.dockerignore');
  const ignored = dockerignore(existsSync(ignoreFile) ? readFileSync(ignoreFile, 'utf8') : '');
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (ignored(r)) continue;
      if (statSync(path.join(root, r)).isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out;
}

const under = (files: Iterable<string>, dir: string): string[] => [...files].filter((f) => f === dir || f.startsWith(`${dir}/`));

/** What `npm run build` writes: each .ts of the tsconfig's include folders the stage holds as .js and .d.ts, and the copied assets. */
function build(stage: Stage, root: string): void {
  const at = (rel: string): string => path.posix.join(stage.workdir, rel);
  for (const needed of ['tsconfig.json', 'tsconfig.build.json', 'scripts/copy-assets.js']) {
    if (!stage.files.has(at(needed))) throw new Error(`npm run build needs ${needed}, which the stage does not hold`);
  }
  const include = (JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] }).include;
  for (const dir of include) {
    for (const f of under(stage.files, at(dir))) {
      if (!f.endsWith('.ts')) continue;
      const rel = path.posix.relative(stage.workdir, f).replace(/\.ts$/, '');
      stage.files.add(at(`dist/${rel}.js`)).add(at(`dist/${rel}.d.ts`));
    }
  }
  const assets = /for \(const dir of (\[[^\]]*\])\)/.exec(readFileSync(path.join(root, 'scripts/copy-assets.js'), 'utf8'))?.[1];
  if (!assets) throw new Error('cannot find the asset folders in scripts/copy-assets.js');
  for (const dir of JSON.parse(assets.replace(/'/g, '"')) as string[]) {
    for (const f of under(stage.files, at(dir))) stage.files.add(at(`dist/${path.posix.relative(stage.workdir, f)}`));
  }
}

function run(stage: Stage, cmd: string, root: string): void {
  stage.runs.push(cmd);
  for (const step of cmd.split('&&').map((s) => s.trim())) {
    if (/^npm ci\b/.test(step)) stage.files.add(path.posix.join(stage.workdir, 'node_modules/.package-lock.json'));
    else if (step === 'npm run build') build(stage, root);
    else if (/^apt-get install\b/.test(step))
      stage.packages.push(
        ...step
          .split(' ')
          .slice(2)
          .filter((w) => !w.startsWith('-')),
      );
    else if (!/^(npm prune|apt-get update|rm -rf \/var\/lib\/apt\/lists)/.test(step)) throw new Error(`the Dockerfile model does not know this RUN step: ${step}`);
  }
}

function copy(stage: Stage, args: string, stages: Stage[], context: string[]): void {
  const words = args.split(' ');
  const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
  const dst = words.pop()!;
  const source = from === undefined ? undefined : stages.find((s) => s.name === from);
  if (from !== undefined && !source) throw new Error(`COPY --from=${from}: no such stage before it`);
  const dest = path.posix.resolve(stage.workdir, dst);
  for (const src of words) {
    const files = source ? under(source.files, path.posix.resolve(source.workdir, src)) : under(context, src.replace(/^\.\//, '').replace(/\/$/, ''));
    if (files.length === 0) throw new Error(`COPY ${src}: nothing there${source ? ` in stage ${from}` : ' in the build context'}`);
    const base = source ? path.posix.resolve(source.workdir, src) : src.replace(/^\.\//, '').replace(/\/$/, '');
    for (const f of files) {
      const isWhole = f === base;
      const target = isWhole ? (dst.endsWith('/') || words.length > 1 ? path.posix.join(dest, path.posix.basename(f)) : dest) : path.posix.join(dest, path.posix.relative(base, f));
      stage.files.add(target);
    }
  }
}

/** The stages of `Dockerfile` in `root`, each with the files it holds. */
export function modelImage(root: string): Stage[] {
  const context = contextFiles(root);
  const stages: Stage[] = [];
  for (const { op, args } of instructions(readFileSync(path.join(root, 'Dockerfile'), 'utf8'))) {
    if (op === 'FROM') {
      const m = /^(\S+)(?: AS (\S+))?$/i.exec(args);
      stages.push({ name: m?.[2], base: m?.[1] ?? args, workdir: '/', files: new Set(), packages: [], runs: [], entrypoint: undefined, user: undefined });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`${op} before FROM`);
    if (op === 'WORKDIR') stage.workdir = path.posix.resolve(stage.workdir, args);
    else if (op === 'COPY') copy(stage, args, stages, context);
    else if (op === 'RUN') run(stage, args, root);
    else if (op === 'ENTRYPOINT') stage.entrypoint = JSON.parse(args) as string[];
    else if (op === 'USER') stage.user = args;
    else if (op !== 'ENV') throw new Error(`the Dockerfile model does not know ${op}`);
  }
  return stages;
}
