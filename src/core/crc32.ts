/**
 * CRC-32 as zip files use it (IEEE 802.3, reflected). `crc32` runs the Wasm kernel once the shared
 * kernels have been loaded (`getKernels()` in kernels.ts, which the CLI and the repository library
 * call; `useFastCrc32()` there does it explicitly) and plain JS before that, so format code can call it
 * synchronously in every runtime. Same results either way.
 */
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
})();

/** Plain-JS CRC-32, slicing by 8. */
export function crc32Js(bytes: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n % 8);
  for (; i < end8; i += 8) {
    const a = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) ^ c;
    const b = bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) | (bytes[i + 7] << 24);
    c = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^ t[1024 + (a >>> 24)] ^
      t[768 + (b & 0xff)] ^ t[512 + ((b >>> 8) & 0xff)] ^ t[256 + ((b >>> 16) & 0xff)] ^ t[b >>> 24];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

let impl: (bytes: Uint8Array, crc: number) => number = crc32Js;

/** Continue a CRC-32 over more bytes: crc32(b, crc32(a)) === crc32(a ++ b). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  return impl(bytes, crc);
}

/** Replace the implementation (kernels.ts installs the Wasm kernel when `getKernels()` first resolves). */
export function setCrc32Impl(fn: (bytes: Uint8Array, crc: number) => number): void {
  impl = fn;
}
