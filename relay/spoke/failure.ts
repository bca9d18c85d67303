// Spoke_failure codes (docs/bob-protocol.md §1, packet 0d) and the result type every
// spoke operation returns: protocol failures are values, never exceptions, so a
// peer's bad input can always be answered with the right 0d byte.

export const SpokeFailure = {
  /** 00: a point is not on the prime-order subgroup (or is otherwise invalid). */
  PointNotOnPrimeOrderSubgroup: 0,
  /** 01: the receiver rejected the sender's validator (a wrong password). */
  InvalidClientValidator: 1,
  /** 02: the sender rejected the receiver's validator. */
  InvalidServerValidator: 2,
  /** 03: the public packet is malformed or out of bounds. */
  InvalidPublicPacket: 3,
  /** 04: the secret packet is malformed. */
  InvalidSecretPacket: 4,
} as const;

export type SpokeFailureCode = (typeof SpokeFailure)[keyof typeof SpokeFailure];

export interface SpokeError {
  readonly ok: false;
  readonly code: SpokeFailureCode;
  readonly message: string;
}

export interface SpokeOk<T> {
  readonly ok: true;
  readonly value: T;
}

export type SpokeResult<T> = SpokeOk<T> | SpokeError;

export function spokeOk<T>(value: T): SpokeOk<T> {
  return { ok: true, value };
}

export function spokeError(code: SpokeFailureCode, message: string): SpokeError {
  return { ok: false, code, message };
}

export function isSpokeFailureCode(n: number): n is SpokeFailureCode {
  return Number.isInteger(n) && n >= 0 && n <= 4;
}
