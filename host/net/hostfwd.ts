// The `--net user:...` option text, items separated by commas:
// - host port forwards in QEMU's hostfwd syntax,
//   `hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`:
//     hostfwd=tcp:127.0.0.1:9000-:9000    host 127.0.0.1:9000 -> guest port 9000
//     hostfwd=udp::5353-:53               empty host address -> 127.0.0.1
//     hostfwd=:127.0.0.1:8080-:80         empty protocol -> tcp (as QEMU)
// - what the guest may reach on the host: nothing by default (QEMU's
//   restrict=on), a port at a time with `guestfwd=tcp:PORT` (the guest's
//   connections to the gateway address on PORT reach 127.0.0.1:PORT), or
//   every port with `restrict=off`.
//
// Unlike QEMU, the host address must be a loopback address: user networking
// runs without root to let programs on this machine reach the guest, and
// binding 0.0.0.0 would quietly expose the guest to the whole network.

import { formatIpv4, parseIpv4 } from '../../stack/index.js';

/** A command-line mistake; the CLI reports the message and exits with status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface HostForward {
  proto: 'tcp' | 'udp';
  /** Dotted quad in 127.0.0.0/8. */
  hostAddress: string;
  hostPort: number;
  guestPort: number;
  /** The guest address written in the rule, if any; it must be the guest's own
   *  (checked by startUserNet, which knows it). */
  guestAddress?: string;
}

export const DEFAULT_HOST_ADDRESS = '127.0.0.1';

const SYNTAX = 'hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT';

/** Everything `--net user:...` says. */
export interface UserNetSpec {
  hostfwd: HostForward[];
  /** Host loopback ports the guest may connect to through the gateway address. */
  guestfwd: number[];
  /** false (restrict=off): every host loopback port; guestfwd is then moot. */
  restrict: boolean;
}

const GUESTFWD_SYNTAX = 'guestfwd=tcp:PORT';

/** Parse the text after `user:` (empty: no forwards, nothing reachable on the host). */
export function parseUserNet(spec: string): UserNetSpec {
  const out: UserNetSpec = { hostfwd: [], guestfwd: [], restrict: true };
  if (spec.trim() === '') return out;
  const forwards: string[] = [];
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    if (item.startsWith('guestfwd=')) out.guestfwd.push(parseGuestForward(item, out.guestfwd));
    else if (item.startsWith('restrict=')) out.restrict = parseRestrict(item);
    else forwards.push(raw);
  }
  out.hostfwd = parseHostForwards(forwards.join(','));
  return out;
}

function parseGuestForward(item: string, seen: number[]): number {
  const m = /^guestfwd=(?:tcp)?:(\d{1,5})$/.exec(item);
  const port = m ? Number(m[1]) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new UsageError(`--net user: '${item}' is malformed (expected ${GUESTFWD_SYNTAX}, a port 1-65535)`);
  if (seen.includes(port)) throw new UsageError(`--net user: duplicate ${item}`);
  return port;
}

function parseRestrict(item: string): boolean {
  const value = item.slice('restrict='.length);
  if (value === 'on' || value === 'yes') return true;
  if (value === 'off' || value === 'no') return false;
  throw new UsageError(`--net user: '${item}' is malformed (restrict=on or restrict=off)`);
}

/** Parse a list of hostfwd items; an empty text means no forwards. */
export function parseHostForwards(spec: string): HostForward[] {
  const forwards: HostForward[] = [];
  if (spec.trim() === '') return forwards;
  const seen = new Set<string>();
  for (const item of spec.split(',')) {
    if (item.trim() === '') throw new UsageError(`--net user: empty item in '${spec}'`);
    const fwd = parseItem(item.trim());
    const key = `${fwd.proto}:${fwd.hostAddress}:${fwd.hostPort}`;
    if (seen.has(key)) throw new UsageError(`--net user: duplicate forward of ${key} in '${item.trim()}'`);
    seen.add(key);
    forwards.push(fwd);
  }
  return forwards;
}

function parseItem(item: string): HostForward {
  const eq = item.indexOf('=');
  const key = eq < 0 ? item : item.slice(0, eq);
  if (key !== 'hostfwd') {
    throw new UsageError(`--net user: unknown option '${item}' (expected ${SYNTAX}, ${GUESTFWD_SYNTAX} or restrict=on|off)`);
  }
  const rule = item.slice(eq + 1);
  const dash = rule.indexOf('-');
  if (dash < 0) throw new UsageError(`--net user: '${item}' has no '-' between host and guest (expected ${SYNTAX})`);
  const host = rule.slice(0, dash).split(':');
  const guest = rule.slice(dash + 1).split(':');
  if (host.length !== 3 || guest.length !== 2) {
    throw new UsageError(`--net user: '${item}' is malformed (expected ${SYNTAX})`);
  }
  const [protoText, hostAddressText, hostPortText] = host as [string, string, string];
  const [guestAddressText, guestPortText] = guest as [string, string];
  const fwd: HostForward = {
    proto: parseProto(protoText, item),
    hostAddress: parseHostAddress(hostAddressText, item),
    hostPort: parsePort(hostPortText, 'host', item),
    guestPort: parsePort(guestPortText, 'guest', item),
  };
  if (guestAddressText !== '') fwd.guestAddress = parseAddress(guestAddressText, 'guest', item);
  return fwd;
}

function parseProto(text: string, item: string): 'tcp' | 'udp' {
  if (text === '' || text === 'tcp') return 'tcp';
  if (text === 'udp') return 'udp';
  throw new UsageError(`--net user: unknown protocol '${text}' in '${item}' (tcp or udp)`);
}

function parseHostAddress(text: string, item: string): string {
  if (text === '') return DEFAULT_HOST_ADDRESS;
  const address = parseAddress(text, 'host', item);
  if (!address.startsWith('127.')) {
    throw new UsageError(
      `--net user: host address ${text} in '${item}' is not a loopback address (127.0.0.0/8): ` +
        'user networking listens on loopback only, so the guest is not exposed to other machines',
    );
  }
  return address;
}

/** A dotted quad, normalized (leading zeros dropped). */
function parseAddress(text: string, which: 'host' | 'guest', item: string): string {
  try {
    return formatIpv4(parseIpv4(text));
  } catch {
    throw new UsageError(`--net user: invalid ${which} address '${text}' in '${item}' (expected a dotted quad)`);
  }
}

function parsePort(text: string, which: 'host' | 'guest', item: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new UsageError(`--net user: invalid ${which} port '${text}' in '${item}' (1-65535)`);
  }
  return port;
}
