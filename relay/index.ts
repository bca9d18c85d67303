// The public API of `uk-runtime/relay`: the bob-compatible relay, on host
// sockets or on our stack, and the send/receive clients as a library.
// The `bob` command (relay/cli.ts) is built on exactly this.

export { startHostRelay } from './server/host.js';
export { startStackRelay } from './server/stack.js';
export { HANDSHAKE_PORT, SECURE_PORT, type RelayServer, type RelayServerOptions } from './server/server.js';
export { RELAY_DEFAULTS, resolveLimits, type RelayLimits } from './server/limits.js';
export * from './client/index.js';
export { runStress } from './stress/run.js';
