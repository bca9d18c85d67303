// The hot-path module: every export is called from stack/hotpath/wasm.ts.
// The module imports its memory (env.memory, fixed size, created by the host)
// and keeps nothing in it below SCRATCH_BASE but its static data.

export {
  sum16, checksum, checksumScalar, pseudoHeaderSumV4, checksumUpdate16,
} from './checksum';
export {
  decode, decodeTransport, tcpHeaderLen, encodeTcp, encodeUdp, encodeIcmp, encodeIpv4, encodeArp,
} from './codec';
export * from './arena';
export * from './seq';
export { tcpInput, tcpSendBurst } from './tcp-fast';

/** End of the module's static data; the loader checks it is below SCRATCH_BASE. */
export function staticDataEnd(): u32 {
  return <u32>__heap_base;
}
