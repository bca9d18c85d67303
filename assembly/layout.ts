// AssemblyScript mirror of the constants in stack/hotpath/layout.ts that the
// checksum and codec need. Keep the two files in step: the TypeScript stack reads
// the records these offsets describe.

export const SCRATCH_BASE: u32 = 16384;
export const DECODED_BASE: u32 = SCRATCH_BASE;
export const DECODED_WORDS: u32 = 64;
export const ENCODE_BASE: u32 = DECODED_BASE + DECODED_WORDS * 4;

// Frame kinds (layout.ts `Kind`).
export const KIND_NONE: u32 = 0;
export const KIND_ARP: u32 = 1;
export const KIND_IPV4_OTHER: u32 = 2;
export const KIND_ICMP: u32 = 3;
export const KIND_UDP: u32 = 4;
export const KIND_TCP: u32 = 5;
export const KIND_IPV4_FRAGMENT: u32 = 6;

export const ETHERTYPE_IPV4: u32 = 0x0800;
export const ETHERTYPE_ARP: u32 = 0x0806;

export const IPPROTO_ICMP: u32 = 1;
export const IPPROTO_TCP: u32 = 6;
export const IPPROTO_UDP: u32 = 17;

export const TCP_FIN: u32 = 0x01;
export const TCP_SYN: u32 = 0x02;
export const TCP_RST: u32 = 0x04;

// Rejection reasons (layout.ts `Reason`).
export const R_OK: u32 = 0;
export const R_FRAME_TOO_SHORT: u32 = 1;
export const R_UNKNOWN_ETHERTYPE: u32 = 2;
export const R_ARP_TOO_SHORT: u32 = 3;
export const R_ARP_UNSUPPORTED: u32 = 4;
export const R_ARP_BAD_OP: u32 = 5;
export const R_IP_TOO_SHORT: u32 = 6;
export const R_IP_BAD_VERSION: u32 = 7;
export const R_IP_BAD_IHL: u32 = 8;
export const R_IP_BAD_TOTAL_LENGTH: u32 = 9;
export const R_IP_BAD_CHECKSUM: u32 = 10;
export const R_IP_BAD_OPTIONS: u32 = 11;
export const R_IP_BAD_FRAGMENT: u32 = 12;
export const R_ICMP_TOO_SHORT: u32 = 13;
export const R_ICMP_BAD_CHECKSUM: u32 = 14;
export const R_UDP_TOO_SHORT: u32 = 15;
export const R_UDP_BAD_LENGTH: u32 = 16;
export const R_UDP_BAD_CHECKSUM: u32 = 17;
export const R_TCP_TOO_SHORT: u32 = 18;
export const R_TCP_BAD_DATA_OFFSET: u32 = 19;
export const R_TCP_BAD_CHECKSUM: u32 = 20;
export const R_TCP_BAD_OPTION: u32 = 21;
export const R_IP_SOURCE_INVALID: u32 = 22;
export const R_TCP_BAD_FLAGS: u32 = 23;

// Decoded-frame record word indexes (layout.ts `D`).
export const D_REASON: u32 = 0;
export const D_KIND: u32 = 1;
export const D_FRAME_OFF: u32 = 2;
export const D_FRAME_LEN: u32 = 3;
export const D_ETHERTYPE: u32 = 4;
export const D_ARP_OP: u32 = 5;
export const D_ARP_SHA_OFF: u32 = 6;
export const D_ARP_SPA: u32 = 7;
export const D_ARP_THA_OFF: u32 = 8;
export const D_ARP_TPA: u32 = 9;
export const D_IP_OFF: u32 = 10;
export const D_IP_HLEN: u32 = 11;
export const D_IP_TOS: u32 = 12;
export const D_IP_TOTAL_LEN: u32 = 13;
export const D_IP_ID: u32 = 14;
export const D_IP_FRAG: u32 = 15;
export const D_IP_TTL: u32 = 16;
export const D_IP_PROTO: u32 = 17;
export const D_IP_SRC: u32 = 18;
export const D_IP_DST: u32 = 19;
export const D_L4_OFF: u32 = 20;
export const D_L4_LEN: u32 = 21;
export const D_ICMP_TYPE: u32 = 22;
export const D_ICMP_CODE: u32 = 23;
export const D_ICMP_REST: u32 = 24;
export const D_SPORT: u32 = 25;
export const D_DPORT: u32 = 26;
export const D_TCP_SEQ: u32 = 27;
export const D_TCP_ACK: u32 = 28;
export const D_TCP_HLEN: u32 = 29;
export const D_TCP_FLAGS: u32 = 30;
export const D_TCP_WINDOW: u32 = 31;
export const D_TCP_URG: u32 = 32;
export const D_OPT_MSS: u32 = 33;
export const D_OPT_WSCALE: u32 = 34;
export const D_OPT_SACK_OK: u32 = 35;
export const D_OPT_TS: u32 = 36;
export const D_OPT_TSVAL: u32 = 37;
export const D_OPT_TSECR: u32 = 38;
export const D_OPT_SACK_COUNT: u32 = 39;
export const D_OPT_SACK: u32 = 40;
export const D_PAYLOAD_OFF: u32 = 48;
export const D_PAYLOAD_LEN: u32 = 49;

// Encode request word indexes (layout.ts `E`).
export const E_DST_MAC_HI: u32 = 0;
export const E_DST_MAC_LO: u32 = 1;
export const E_SRC_MAC_HI: u32 = 2;
export const E_SRC_MAC_LO: u32 = 3;
export const E_IP_SRC: u32 = 4;
export const E_IP_DST: u32 = 5;
export const E_IP_TTL: u32 = 6;
export const E_IP_TOS: u32 = 7;
export const E_IP_ID: u32 = 8;
export const E_IP_FRAG: u32 = 9;
export const E_IP_PROTO: u32 = 10;
export const E_SPORT: u32 = 11;
export const E_DPORT: u32 = 12;
export const E_TCP_SEQ: u32 = 13;
export const E_TCP_ACK: u32 = 14;
export const E_TCP_FLAGS: u32 = 15;
export const E_TCP_WINDOW: u32 = 16;
export const E_TCP_URG: u32 = 17;
export const E_OPT_MSS: u32 = 18;
export const E_OPT_WSCALE: u32 = 19;
export const E_OPT_SACK_OK: u32 = 20;
export const E_OPT_TS: u32 = 21;
export const E_OPT_TSVAL: u32 = 22;
export const E_OPT_TSECR: u32 = 23;
export const E_OPT_SACK_COUNT: u32 = 24;
export const E_OPT_SACK: u32 = 25;
export const E_ICMP_TYPE: u32 = 33;
export const E_ICMP_CODE: u32 = 34;
export const E_ICMP_REST: u32 = 35;
export const E_ARP_OP: u32 = 36;
export const E_ARP_SHA_HI: u32 = 37;
export const E_ARP_SHA_LO: u32 = 38;
export const E_ARP_SPA: u32 = 39;
export const E_ARP_THA_HI: u32 = 40;
export const E_ARP_THA_LO: u32 = 41;
export const E_ARP_TPA: u32 = 42;

// Header sizes.
export const ETH_HLEN: u32 = 14;
export const IPV4_HLEN: u32 = 20;
export const UDP_HLEN: u32 = 8;
export const ICMP_HLEN: u32 = 8;
export const TCP_BASE_HLEN: u32 = 20;
export const ARP_FRAME_LEN: u32 = 42;
export const ARP_PADDED_LEN: u32 = 60;
