import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { instantiateKernels, simdSupported } from '../../src/core/wasm.ts';

test('wasm: both kernel builds load and report their variant', async () => {
  assert.ok(simdSupported(), 'this runtime should support fixed-width SIMD');
  const simd = await instantiateKernels('simd');
  const scalar = await instantiateKernels('scalar');
  assert.is((simd.exports.simdEnabled as () => number)(), 1);
  assert.is((scalar.exports.simdEnabled as () => number)(), 0);
  const imports = WebAssembly.Module.imports(await WebAssembly.compile((await import('../../src/core/wasm.ts')).kernelModuleBytes('simd') as BufferSource));
  assert.equal(imports.map((i) => `${i.module}.${i.name}`).filter((n) => n !== 'env.abort'), [], 'module imports nothing but abort');
});

test.run();
