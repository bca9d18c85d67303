// Passwords for `bob send` without -p (docs/bob-protocol.md §8): two pronounceable
// words joined by '-', printed for the user to read out. bob draws them from
// OCaml's non-cryptographic Random (§7); these come from the CSPRNG, with
// rejection sampling so every letter is uniform.
//
// A word is four consonant-vowel syllables: (16 × 5)^4 ≈ 2^25.3 choices, so
// a password carries ≈ 50 bits. SPAKE2 leaves an eavesdropper no offline
// test: an attacker gets one guess per exchange it takes part in.

const CONSONANTS = 'bdfgjklmnprstvwz';
const VOWELS = 'aeiou';
const SYLLABLES_PER_WORD = 4;

export type RandomBytes = (length: number) => Uint8Array;

const cryptoBytes: RandomBytes = (length) => crypto.getRandomValues(new Uint8Array(length));

export function generatePassword(random: RandomBytes = cryptoBytes): string {
  return [word(random), word(random)].join('-');
}

function word(random: RandomBytes): string {
  let out = '';
  for (let i = 0; i < SYLLABLES_PER_WORD; i++) out += pick(CONSONANTS, random) + pick(VOWELS, random);
  return out;
}

/** A uniform letter of `alphabet`: bytes at or above the largest multiple of its length are redrawn. */
function pick(alphabet: string, random: RandomBytes): string {
  const limit = 256 - (256 % alphabet.length);
  for (let attempt = 0; attempt < 1000; attempt++) {
    const byte = random(1)[0];
    if (byte < limit) return alphabet[byte % alphabet.length];
  }
  throw new Error('random source keeps returning out-of-range bytes');
}
