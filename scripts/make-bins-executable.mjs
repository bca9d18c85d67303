#!/usr/bin/env node
// After `tsc`, mark every bin that package.json names executable: tsc writes
// plain files, and a bin run from a checkout (npm link) or from an installed
// package must be executable.

import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const file of Object.values(pkg.bin ?? {})) chmodSync(join(root, file), 0o755);
