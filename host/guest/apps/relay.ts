// `uk run relay`: the bob relay (TCP 9000 handshake, 9001 secure room) on the
// guest's own stack. The relay is written once over a small socket interface;
// relay/server/guest-main.ts adapts it to the guest context.
export { default } from '../../../relay/server/guest-main.js';
