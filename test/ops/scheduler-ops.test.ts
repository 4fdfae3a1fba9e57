import { CliProcess, envFor } from '../helpers/processes';
import { useTestServers } from '../helpers/use-test-servers';

/* The built `cluster-sync scheduler` serves the ops routes, and stops on SIGTERM even with a page's event stream open. */
const lab = useTestServers();

test('the scheduler serves /ui, /ops/clusters, /metrics and an event stream; SIGTERM ends it with a stream open', async () => {
  const p = new CliProcess(['scheduler', '--port', '0'], envFor(lab.config, { CS_API_TOKEN: 'a-test-token-0123456789' }));
  try {
    const [, url] = (await p.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/)) as unknown as [string, string];
    const page = await fetch(`${url}/ui`);
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect(await (await fetch(`${url}/ops/clusters`)).json()).toMatchObject({ clusters: [] });
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('cs_clusters_open 0');
    const ctrl = new AbortController();
    const stream = await fetch(`${url}/ops/events`, { signal: ctrl.signal });
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    // It stops by itself (exit 0) with the event stream still open; a hang would end the test by its timeout.
    p.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    ctrl.abort();
  } finally {
    await p.stop();
  }
});
