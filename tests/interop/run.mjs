// `npm test`: runs the interop suite with node:test (one file at a time), prints node's spec
// report, then one closing line: `interop: N scenarios, N passed, N failed`.
//
//   INTEROP_FILTER=regex   only tests whose name matches (e.g. "^c\\.|provider")
//   INTEROP_FILES=a,b      only these files under test/ (e.g. provider.test.mjs)

import { readdirSync } from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TEST_DIR = path.join(HERE, 'test');

const only = process.env.INTEROP_FILES ? process.env.INTEROP_FILES.split(',').map((s) => s.trim()) : null;
const files = readdirSync(TEST_DIR)
  .filter((f) => f.endsWith('.test.mjs'))
  .filter((f) => !only || only.includes(f))
  .sort((a, b) => (a === 'provider.test.mjs' ? -1 : b === 'provider.test.mjs' ? 1 : a.localeCompare(b)))
  .map((f) => path.join(TEST_DIR, f));

const options = { files, concurrency: 1 };
if (process.env.INTEROP_FILTER) options.testNamePatterns = [new RegExp(process.env.INTEROP_FILTER)];

let passed = 0;
let failed = 0;
let skipped = 0;
const stream = run(options);
// Top-level tests are the scenarios (nesting 0, not the per-file wrapper node adds when a file
// itself fails to load: that one counts as a failure too).
stream.on('test:pass', (data) => {
  if (data.nesting !== 0) return;
  if (data.skip || data.todo) skipped += 1;
  else passed += 1;
});
stream.on('test:fail', (data) => {
  if (data.nesting !== 0) return;
  failed += 1;
});

const report = stream.compose(new spec());
report.pipe(process.stdout, { end: false });
await finished(report);

const total = passed + failed + skipped;
process.stdout.write(
  `\ninterop: ${total} scenarios, ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`,
);
process.exitCode = failed > 0 || total === 0 ? 1 : 0;
