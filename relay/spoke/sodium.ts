// The one place libsodium is loaded. The top-level await means every importer
// gets an initialised library and the spoke functions can stay synchronous.
import sodium from 'libsodium-wrappers-sumo';

await sodium.ready;

export { sodium };
