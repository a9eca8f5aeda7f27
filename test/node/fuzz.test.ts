// The seeded mutation fuzzer (test/shared/fuzz.ts) over every reader: a few thousand cases per
// format (THETA_FUZZ_CASES overrides), each opened, read and rebuilt. Every case must end 'ok'
// (accepted and rebuilt byte for byte) or in a typed error: no untyped error, no mismatch, no hang.
// Long campaigns: `npm run fuzz -- --format F --cases N --seed S` (scripts/fuzz.mjs).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { useFastCrc32 } from '../../src/core/kernels.ts';
import { campaign, runCase, FUZZ_FORMATS, type FuzzFormat } from '../shared/fuzz.ts';
import { repoRoot } from './helpers.ts';

const t = suite('fuzz: every reader, seeded mutations');
const CASES = Number(process.env.THETA_FUZZ_CASES ?? 2000);
const SEED = 12;

for (const format of FUZZ_FORMATS) {
  t(`${format}: ${CASES} mutated inputs end ok or in a typed error`, async () => {
    await useFastCrc32();
    const s = await campaign(format, SEED, 0, CASES, { timeoutMs: 20_000 });
    assert.is(s.cases, CASES);
    assert.equal(s.failures, [], `${format}: ${JSON.stringify(s.failures.slice(0, 5))}`);
    assert.ok(s.ok > 0 && s.typed > 0, `${format}: both outcomes happen (ok ${s.ok}, typed ${s.typed}): the mutations reach the parser and leave some inputs valid`);
  });
}

// Every input that ever found a bug stays: test/fixtures/fuzz/<format>/<name>.(bin|json)
t('regression cases found by fuzzing end ok or in a typed error', async () => {
  const dir = join(repoRoot, 'test/fixtures/fuzz');
  let n = 0;
  if (!existsSync(dir)) return;
  for (const format of readdirSync(dir) as FuzzFormat[]) {
    for (const f of readdirSync(join(dir, format))) {
      const path = join(dir, format, f);
      const input = f.endsWith('.json') && format === 'tfjs'
        ? (() => { const j = JSON.parse(readFileSync(path, 'utf8')); return { modelJson: Buffer.from(j.modelJson, 'base64'), shards: new Map(Object.entries(j.shards as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64')])) }; })()
        : new Uint8Array(readFileSync(path));
      for (const readWhole of [true, false]) {
        const r = await runCase(format, input, { readWhole, timeoutMs: 20_000 });
        assert.ok(r.outcome === 'ok' || r.outcome === 'typed', `${format}/${f}: ${r.outcome} ${r.error ?? ''}`);
      }
      n++;
    }
  }
  assert.ok(n > 0, 'the regression corpus is not empty');
});

t.run();
