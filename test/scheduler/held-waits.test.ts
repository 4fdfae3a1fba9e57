import { ClientGone, ReportGroups, holdWait } from '../../src/scheduler/held-waits';
import type { Held, ReportGroup } from '../../src/scheduler/held-waits';

/**
 * The legacy endpoint's held waits (held-waits.ts), without servers: a
 * group's report is made once however many waits join it, one delivery
 * answers every wait of the group, a reconnect sends an open group's report
 * again under the same id, and a client that goes away leaves nothing.
 */

/** A group of waits whose report only records what it sent. */
function recordingGroups(): {
  groups: ReportGroups<undefined, string>;
  made: string[];
  sent: string[];
  join: (g: ReportGroup<undefined, string>) => Promise<Held<string>>;
  group: () => ReportGroup<undefined, string>;
} {
  const groups = new ReportGroups<undefined, string>();
  const made: string[] = [];
  const sent: string[] = [];
  const group = (): ReportGroup<undefined, string> =>
    groups.group('start', 'job-a wait_start', () => {
      const id = `job-a.wait_start.${made.length + 1}`;
      made.push(id);
      return { meta: undefined, send: async () => void sent.push(id) };
    });
  const join = (g: ReportGroup<undefined, string>): Promise<Held<string>> =>
    holdWait<string>(undefined, new ClientGone(), (finish) => {
      const leave = g.join(finish);
      g.ensureSent();
      return leave;
    });
  return { groups, made, sent, join, group };
}

test('a thousand waits of one node share one group: its report is made and sent once, and one delivery answers them all', async () => {
  const { groups, made, sent, join, group } = recordingGroups();
  const waits = Array.from({ length: 1000 }, () => join(group()));
  expect(groups.waiting).toBe(1000);
  expect(made).toEqual(['job-a.wait_start.1']);
  await Promise.resolve();
  expect(sent).toEqual(['job-a.wait_start.1']);
  for (const g of groups.in('start')) g.settle('start');
  expect(new Set(await Promise.all(waits))).toEqual(new Set(['start']));
  // Every wait left; the group went with the last one.
  expect(groups.waiting).toBe(0);
  expect(groups.all()).toEqual([]);
  // The next wait after the answer is a new group with a new report.
  const next = join(group());
  expect(made).toEqual(['job-a.wait_start.1', 'job-a.wait_start.2']);
  group().settle('start');
  expect(await next).toBe('start');
});

test('after a reconnect an open group sends its report again under the same id; a group nobody waits in is gone and sends nothing', async () => {
  const { groups, made, sent, join, group } = recordingGroups();
  const waits = [join(group()), join(group())];
  await Promise.resolve();
  for (const g of groups.all()) g.resend();
  await Promise.resolve();
  expect(made).toEqual(['job-a.wait_start.1']);
  expect(sent).toEqual(['job-a.wait_start.1', 'job-a.wait_start.1']);
  group().settle('start');
  expect(await Promise.all(waits)).toEqual(['start', 'start']);
  for (const g of groups.all()) g.resend();
  await Promise.resolve();
  expect(sent).toHaveLength(2);
});

test('a client that goes away ends its wait "gone" and leaves the group; the other waits stay and are answered', async () => {
  const { groups, join, group } = recordingGroups();
  const gone = new ClientGone();
  const leaving = holdWait<string>(undefined, gone, (finish) => group().join(finish));
  const staying = join(group());
  expect(groups.waiting).toBe(2);
  gone.fire();
  expect(await leaving).toBe('gone');
  expect(groups.waiting).toBe(1);
  group().settle('ready');
  expect(await staying).toBe('ready');
  // Firing again, or a wait that starts after the client went, changes nothing.
  gone.fire();
  expect(await holdWait<string>(undefined, gone, () => () => undefined)).toBe('gone');
  expect(groups.waiting).toBe(0);
});

test('a report that fails answers every wait of its group with the error, and the next wait sends again', async () => {
  const groups = new ReportGroups<undefined, string>();
  let attempts = 0;
  const group = (): ReportGroup<undefined, string> =>
    groups.group('start', 'job-a wait_start', () => ({
      meta: undefined,
      send: async () => {
        attempts++;
        if (attempts === 1) throw new Error('no worker answered');
      },
    }));
  const wait = (): Promise<Held<string>> =>
    holdWait<string>(undefined, new ClientGone(), (finish) => {
      const g = group();
      const leave = g.join(finish);
      g.ensureSent();
      return leave;
    });
  await expect(Promise.all([wait(), wait()])).rejects.toThrow('no worker answered');
  expect(groups.waiting).toBe(0);
  const again = wait();
  await Promise.resolve();
  expect(attempts).toBe(2);
  group().settle('start');
  expect(await again).toBe('start');
});
