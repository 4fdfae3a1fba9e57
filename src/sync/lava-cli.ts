import path from 'node:path';
import { SYNC_OPS } from './wire';
import type { SyncOp } from './wire';
import { runSyncCommand } from './command';

/**
 * Entry of the generated `lava-send`, `lava-wait`, `lava-wait-all` and
 * `lava-sync` scripts: `node lava-cli.js lava-send ID ...`. Kept small so
 * that it starts fast (no command-line framework, no NATS client).
 */
const [cmd, ...args] = process.argv.slice(2);
const op = (cmd ?? '').replace(/^lava-/, '');
if (!(SYNC_OPS as readonly string[]).includes(op)) {
  process.stderr.write(`${path.basename(process.argv[1] ?? 'lava-cli')}: unknown command ${JSON.stringify(cmd)}; expected lava-send, lava-wait, lava-wait-all or lava-sync\n`);
  process.exitCode = 2;
} else {
  void runSyncCommand(op as SyncOp, args, process.env, (line) => process.stderr.write(`${line}\n`)).then((code) => {
    process.exitCode = code;
  });
}
