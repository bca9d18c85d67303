// The clients' small parts: relay addresses, generated passwords, prompts,
// log levels, the output checks.
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRelay } from '../../relay/client/endpoint.js';
import { levelFromFlags } from '../../relay/client/log.js';
import { outputProblem } from '../../relay/client/output.js';
import { ProgressBar, formatBytes } from '../../relay/client/progress.js';
import { generatePassword } from '../../relay/client/password.js';
import { LineAsker, askAccept, askPassword } from '../../relay/client/prompt.js';

describe('relay address', () => {
  it.each([
    ['127.0.0.1', { host: '127.0.0.1', port: 9000 }],
    ['127.0.0.1:9100', { host: '127.0.0.1', port: 9100 }],
    ['relay.example', { host: 'relay.example', port: 9000 }],
    ['relay.example:1', { host: 'relay.example', port: 1 }],
    ['::1', { host: '::1', port: 9000 }],
    ['[::1]:9100', { host: '::1', port: 9100 }],
  ])('%s', (text, expected) => {
    expect(parseRelay(text, 9001)).toEqual({ ...expected, securePort: 9001 });
  });

  it.each(['127.0.0.1:0', '127.0.0.1:65536', 'host:port', ':9000', 'a b', '[::1]:x'])('rejects %s', (text) => {
    expect(typeof parseRelay(text)).toBe('string');
  });
});

describe('generated passwords', () => {
  it('are two pronounceable 8-letter words from the CSPRNG', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const pw = generatePassword();
      expect(pw).toMatch(/^([bdfgjklmnprstvwz][aeiou]){4}-([bdfgjklmnprstvwz][aeiou]){4}$/);
      seen.add(pw);
    }
    expect(seen.size).toBe(200);
  });

  it('draw every letter uniformly (bytes past the last full alphabet are redrawn)', () => {
    // 16 consonants divide 256: every byte is usable. 5 vowels do not: 255 (past 5·51) is redrawn.
    const bytes = [255, 255, 1, 0, 9];
    let i = 0;
    const pw = generatePassword(() => Uint8Array.of(bytes[i++ % bytes.length]));
    expect(pw.slice(0, 4)).toBe('zebu');
  });
});

function asker(lines: string[]) {
  let out = '';
  const a = new LineAsker({ input: Readable.from(lines.map((l) => `${l}\n`)), output: { write: (s: string) => (out += s) } });
  return { a, out: () => out };
}

describe('prompts', () => {
  it.each([
    [['y'], true],
    [['YES'], true],
    [[''], true],
    [[], true], // EOF accepts: the seed's script gives recv no stdin
    [['n'], false],
    [['No'], false],
    [['maybe', 'y'], true],
    [['?', '?', '?', '?', '?'], false],
  ])('answers %j to "Accept from" → %s', async (lines, expected) => {
    const { a, out } = asker(lines);
    expect(await askAccept(a, '127.0.0.1:5000')).toBe(expected);
    expect(out()).toMatch(/^Accept from 127\.0\.0\.1:5000 \[Y\/n\]: /);
    if (lines.length > 1) expect(out()).toContain('Invalid response, accept from 127.0.0.1:5000 [Y/n]: ');
    a.close();
  });

  it('asks for a password again on an empty line, and gives up at EOF', async () => {
    const first = asker(['', 'secret words']);
    expect(await askPassword(first.a)).toBe('secret words');
    expect(first.out()).toBe('Your password: You must insert a password: ');
    expect(await askPassword(asker([]).a)).toBeNull();
  });
});

describe('log levels', () => {
  it('start at warning; each -v adds one, up to debug; -q silences', () => {
    expect([0, 1, 2, 3, 9].map((v) => levelFromFlags(v, false))).toEqual(['warning', 'info', 'debug', 'debug', 'debug']);
    expect(levelFromFlags(3, true)).toBe('quiet');
  });
});

describe('-o checks', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bob-out-'));
    await writeFile(join(dir, 'here'), '');
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['new.txt', null],
    ['here', /already exists/],
    ['dangling', /already exists/], // a dangling symlink is a file too
    ['.', /not a file name/],
    ['..', /not a file name/],
    ['sub/..', /not a file name/],
    ['dir/', /not a file name/],
  ])('%s', async (output, problem) => {
    const found = await outputProblem(output, dir);
    if (problem === null) expect(found).toBeNull();
    else expect(found).toMatch(problem);
  });
});

describe('progress bar', () => {
  it('redraws one line, with a percentage when the total is known, and ends it', () => {
    let out = '';
    const bar = new ProgressBar({ write: (s: string) => (out += s) }, 'f.bin');
    bar.update(512, 1024);
    expect(out).toMatch(/^\rf\.bin \[#{15}-{15}\]  50% 512 B [\d.]+ (B|KiB|MiB)\/s\x1b\[K$/);
    bar.update(600, 1024); // within 100 ms of the last draw: skipped
    expect(out.split('\r')).toHaveLength(2);
    bar.update(1024, 1024); // the end is always drawn
    expect(out).toContain('100% 1.0 KiB');
    bar.finish();
    expect(out.endsWith('\n')).toBe(true);
  });

  it('formats sizes in binary units', () => {
    expect([0, 1023, 1024, 20 * 1024 * 1024].map(formatBytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '20.0 MiB']);
  });
});
