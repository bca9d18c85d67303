// A network device that cannot be opened or used, apart from the devices
// themselves: the tender reports it (exit 4) without loading the TAP code and
// its native library (koffi), which a guest in `--isolate process` may not load.

export type DeviceErrorCode =
  | 'ENOTUN' // no /dev/net/tun (module not loaded, device not passed into the container)
  | 'EPERM' // not allowed (needs CAP_NET_ADMIN)
  | 'ENODEV' // the interface exists but cannot be attached (not a TAP interface)
  | 'EBUSY' // the interface is already attached to another fd
  | 'EINVAL' // a bad argument (interface name, MAC, MTU, ring size)
  | 'EIO'; // anything else

/** A device that cannot be opened or used. The message is one line meant for
 *  users, e.g. "tap:uk0: cannot open /dev/net/tun: permission denied (needs
 *  CAP_NET_ADMIN)"; `code` is for programs; `errno` names the system error
 *  behind it, if any. */
export class DeviceError extends Error {
  override readonly name = 'DeviceError';
  constructor(
    readonly code: DeviceErrorCode,
    readonly device: string,
    what: string,
    readonly errno?: string,
  ) {
    super(`${device}: ${what}`);
  }
}
