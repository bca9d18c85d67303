// Runs before every test file (vitest.config.ts setupFiles): one seed for
// every fast-check property of the file, from FC_SEED or picked now, printed
// once so that any failure can be replayed. See test/helpers/property.ts and
// docs/testing.md.

import fc from 'fast-check';
import { seedFrom } from '../helpers/property.js';

const seed = seedFrom(process.env);
fc.configureGlobal({ seed });
console.log(`fast-check seed ${seed} (replay: FC_SEED=${seed})`);
