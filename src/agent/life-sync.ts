import type { NodeClient } from '../client/node-client';
import { MessageClient } from '../client/message-client';
import { errorMessage } from '../core/errors';
import type { NodeJob } from '../split/node-job';
import { startSyncServer } from '../sync/server';
import type { SyncServer } from '../sync/server';

/** What a step of the life says (life.ts writes it to the agent's output). */
export type StepExtra = { detail?: string; waited_ms?: number; took_ms?: number };
export type StepWriter = (step: string, result: string, extra?: StepExtra) => void;

/**
 * The lava-* commands of one node's life (the MultiNode API): the message
 * client and the socket server its programs reach, each call and how it ended
 * written as a step of the life.
 */
export class LifeSync {
  private messages: MessageClient | undefined;
  private server: SyncServer | undefined;

  constructor(
    private readonly job: NodeJob,
    private readonly client: NodeClient,
    private readonly step: StepWriter,
  ) {}

  /** Starts the server; returns what a program's environment adds (the socket, lava-* first on PATH). */
  async start(base: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
    this.messages = new MessageClient(this.client, this.job.group);
    await this.messages.start();
    this.server = await startSyncServer(this.job, this.messages, {
      defaultTimeoutMs: this.job.cluster_timeout_ms,
      onCall: (req, reply) => {
        const what = `lava-${req.op} ${req.msg}${req.role ? ` ${req.role}` : ''}`;
        if (reply.ok) this.step(what, 'ok', { waited_ms: req.op === 'send' ? undefined : reply.waited_ms, detail: reply.lines.length > 0 ? reply.lines.join(' ') : undefined });
        else this.step(what, reply.code === 'aborted' ? 'abort' : reply.code === 'timeout' ? 'timed_out' : 'error', { detail: reply.message });
      },
    });
    // lava-send, lava-wait, ... come first on PATH; the socket reaches this agent, which speaks for the program.
    return { ...this.server.env, PATH: [this.server.binDir, base.PATH].filter(Boolean).join(':') };
  }

  /** Removes the socket and closes the message client, whatever of them started. */
  async close(notice: (text: string) => void): Promise<void> {
    await this.server?.close().catch((err: unknown) => notice(`could not remove the lava-* socket: ${errorMessage(err)}`));
    await this.messages?.close();
  }
}
