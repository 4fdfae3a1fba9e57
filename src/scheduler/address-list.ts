import { BlockList, isIP } from 'node:net';

/**
 * Address ranges for `--legacy-allow` and `--trusted-proxy`: an IPv4 or IPv6
 * address (one host) or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
 */
export function checkCidr(value: string): string | undefined {
  const [addr = '', bits, ...rest] = value.split('/');
  const family = isIP(addr);
  if (family === 0 || rest.length > 0) return `${JSON.stringify(value)} is not an IP address or CIDR range (like 10.0.0.0/8)`;
  if (bits === undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `${JSON.stringify(value)}: the prefix length must be 0 to ${max}`;
  return undefined;
}

/** Splits `a,b , c` into its entries. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Whether an address is inside one of the ranges; IPv4-mapped IPv6 (`::ffff:10.0.0.1`) counts as IPv4. */
export class AddressList {
  private readonly list = new BlockList();
  constructor(readonly ranges: readonly string[]) {
    for (const r of ranges) {
      const [addr = '', bits] = r.split('/');
      const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
  }

  has(address: string): boolean {
    const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const family = isIP(plain);
    return family !== 0 && this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }
}
