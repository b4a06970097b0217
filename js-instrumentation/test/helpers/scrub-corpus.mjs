// Scrubs a corpus file (JSON lines of {kind: text|argv|json, input}) with the SDK's scrubber and
// prints one JSON line of output per entry; tests/service/test_scrubber.py compares it with the
// Python engine's output on the same corpus.
import { readFileSync } from 'node:fs';

import { Scrubber } from '../../dist/scrub.js';

const scrubber = new Scrubber();
for (const line of readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const { kind, input } = JSON.parse(line);
  const out = kind === 'text' ? scrubber.text(input) : kind === 'argv' ? scrubber.argv(input) : scrubber.value(input);
  process.stdout.write(JSON.stringify(out) + '\n');
}
