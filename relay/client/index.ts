// The send/receive clients as a library (the CLI and the stress tool use it).
export { send, type SendOptions, type SendResult } from './send.js';
export { receive, type FileOffer, type ReceiveOptions, type ReceiveResult } from './receive.js';
export { type FileSource, bufferSource, fileSource } from './send-file.js';
export { type RelayEndpoint, DEFAULT_ENDPOINT, parseRelay } from './endpoint.js';
export { BobError, ExitCode, type ExitCodeValue } from './errors.js';
export { type Logger, createLogger, silentLogger } from './log.js';
export { generatePassword } from './password.js';
export { DEFAULT_PBKDF2_COUNT } from './defaults.js';
