/**
 * What a test may ask of the runtime it runs in. Each runtime's entry (test/node, test/deno,
 * test/browser) installs one before importing the shared tests, so the same test files run
 * unchanged under Node, Deno and Chromium.
 */
export interface TestPlatform {
  runtime: 'node' | 'deno' | 'chromium';
  /** Bytes of a file in test/fixtures (files made by real PyTorch and NumPy). */
  readFixture(name: string): Promise<Uint8Array>;
  /** Publish a value that scripts/test.mjs compares across the three runtimes (must be identical). */
  report(key: string, value: string): void;
}

declare global {
  // eslint-disable-next-line no-var
  var __thetaTestPlatform: TestPlatform | undefined;
}

export function platform(): TestPlatform {
  const p = globalThis.__thetaTestPlatform;
  if (!p) throw new Error('no test platform installed: run tests through `npm test`');
  return p;
}

export function reportLine(key: string, value: string): string {
  return `@@report ${key} ${value}`;
}

const expectedCache: { value?: Promise<Record<string, ExpectedFile>> } = {};

export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  sum: number;
  sumsq: number;
  maxabs: number;
  sha256_le_bytes: string;
}
export interface ExpectedFile {
  note: string;
  tensors: Record<string, ExpectedTensor>;
}

/** test/fixtures/expected.json */
export function expectedFixtures(): Promise<Record<string, ExpectedFile>> {
  expectedCache.value ??= platform().readFixture('expected.json').then((b) => JSON.parse(new TextDecoder().decode(b)));
  return expectedCache.value;
}
