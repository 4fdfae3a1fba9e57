import { execFile } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ClusterSyncError, ErrorCode, errorMessage } from '../core/errors';

const run = promisify(execFile);

/** Runs a command with an argument list (never a shell); its stdout. */
export type CommandRunner = (file: string, args: string[]) => Promise<string>;

export const execCommand: CommandRunner = async (file, args) => {
  try {
    const { stdout } = await run(file, args, { timeout: 10_000, maxBuffer: 1 << 20 });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`${file} ${args.join(' ')} failed: ${stderr || errorMessage(err)}`);
  }
};

/** The first address `hostname -I` prints (lkp's rule for a node's ip). */
export async function primaryIp(exec: CommandRunner = execCommand): Promise<string> {
  const out = await exec('hostname', ['-I']);
  const first = out.trim().split(/\s+/)[0];
  if (!first) throw new ClusterSyncError(ErrorCode.Internal, '`hostname -I` printed no address; pass --ip');
  return first;
}

export class DirectNetworkError extends ClusterSyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Internal, message, options);
  }
}

interface LinkInfo {
  ifname: string;
  address?: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The devices the machine has, by MAC (lower case). */
export async function devicesByMac(exec: CommandRunner = execCommand): Promise<Map<string, string>> {
  const links = JSON.parse(await exec('ip', ['-j', 'link', 'show'])) as LinkInfo[];
  const out = new Map<string, string>();
  for (const l of links) if (l.address) out.set(l.address.toLowerCase(), l.ifname);
  return out;
}

/**
 * DESIGN §3 step 4: binds each `direct_ips` address (/24) to the device whose
 * MAC is the matching `direct_macs` entry and sets the device up. Needs
 * CAP_NET_ADMIN. Returns `device address` pairs as bound.
 */
export async function bindDirectIps(directMacs: string, directIps: string, exec: CommandRunner = execCommand): Promise<string[]> {
  const macs = directMacs
    .split(/\s+/)
    .filter(Boolean)
    .map((m) => m.toLowerCase());
  const ips = directIps.split(/\s+/).filter(Boolean);
  if (macs.length === 0) return [];
  if (macs.length !== ips.length) throw new DirectNetworkError(`direct_macs has ${macs.length} entries but direct_ips has ${ips.length}`);
  for (const m of macs) if (!MAC.test(m)) throw new DirectNetworkError(`direct_macs entry ${JSON.stringify(m)} is not a MAC address`);
  for (const ip of ips) {
    const parts = IPV4.exec(ip);
    if (!parts || parts.slice(1).some((p) => Number(p) > 255)) throw new DirectNetworkError(`direct_ips entry ${JSON.stringify(ip)} is not an IPv4 address`);
  }
  const devices = await devicesByMac(exec);
  const bound: string[] = [];
  for (let i = 0; i < macs.length; i++) {
    const mac = macs[i] as string;
    const ip = ips[i] as string;
    const dev = devices.get(mac);
    if (!dev) {
      const have = [...devices].map(([m, d]) => `${d} ${m}`).join(', ') || 'none';
      throw new DirectNetworkError(`no network device has MAC ${mac} (for direct ip ${ip}); devices here: ${have}`);
    }
    try {
      await exec('ip', ['addr', 'replace', `${ip}/24`, 'dev', dev]);
      await exec('ip', ['link', 'set', 'dev', dev, 'up']);
    } catch (err) {
      throw new DirectNetworkError(`could not bind ${ip}/24 to ${dev} (MAC ${mac}): ${errorMessage(err)}`, { cause: err });
    }
    bound.push(`${dev} ${ip}`);
  }
  return bound;
}

/** `--etc-hosts`: appends an `IP ROLE` line for every `ROLE=IP` of roles_ip. */
export async function appendEtcHosts(rolesIp: Record<string, string>, file = '/etc/hosts'): Promise<string[]> {
  const lines = Object.entries(rolesIp)
    .filter(([k, v]) => !k.startsWith('direct_') && v !== '' && !/\s/.test(v))
    .map(([k, v]) => `${v} ${k}`);
  if (lines.length > 0) await appendFile(file, `${lines.join('\n')}\n`);
  return lines;
}
