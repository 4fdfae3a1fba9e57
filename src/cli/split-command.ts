import type { Command } from 'commander';
import { prepareClusters } from '../cluster/prepare';
import { action } from './common';
import { readJobFile } from './job-file';

export function registerSplit(program: Command): void {
  program
    .command('split')
    .description('print the node jobs a submit would create, touching no server')
    .argument('<job.yaml>', 'an lkp-tests job file')
    .option('--cluster-dir <dir>', "directory of cluster specs (lkp-tests' cluster/)")
    .option('--json', 'print a JSON array of node jobs')
    .action(
      action(async (file: string, opts: { clusterDir?: string; json?: boolean }) => {
        const prepared = prepareClusters(readJobFile(file), file, { clusterDir: opts.clusterDir });
        for (const w of new Set(prepared.flatMap((p) => p.warnings))) process.stderr.write(`warning: ${w}\n`);
        let n = 0;
        const jobs = prepared.flatMap((p) =>
          p.nodes.map((d, i) => {
            n++;
            return { job_id: `<job-${n}>`, cluster: `<job-${n - i}>`, token: '<secret>', expansion: p.index + 1, ...d };
          }),
        );
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
          return;
        }
        for (const p of prepared) {
          process.stdout.write(`job ${p.index + 1} of ${prepared.length}: cluster spec ${p.spec.name}, ${p.nodes.length} node job${p.nodes.length === 1 ? '' : 's'}\n`);
          for (const d of p.nodes) {
            const progs = d.programs.map((pr) => pr.name).join(', ') || '-';
            const direct = d.direct_ips ? `  direct ${d.direct_macs} -> ${d.direct_ips}` : '';
            process.stdout.write(`  ${d.host}  queue=${d.queue}  roles="${d.node_roles}"  programs=${progs}${direct}\n`);
          }
        }
      }),
    );
}
