// CRC-32 (IEEE 802.3, reflected, as zip uses it), slicing by 16: sixteen 256-entry tables in static
// memory, built on first use. crc32_update(ptr, len, crc) continues `crc` over len bytes, so a
// stream can be checksummed piece by piece: crc32(b, crc32(a)) == crc32(a ++ b).

const T: usize = memory.data(16384, 64);
let ready = false;

function init(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    store<u32>(T + (n << 2), c);
  }
  for (let n: u32 = 0; n < 256; n++) {
    let c = load<u32>(T + (n << 2));
    for (let k: u32 = 1; k < 16; k++) {
      c = load<u32>(T + ((c & 0xff) << 2)) ^ (c >>> 8);
      store<u32>(T + ((k * 256 + n) << 2), c);
    }
  }
  ready = true;
}

@inline function t(k: u32, i: u32): u32 {
  return load<u32>(T + ((k * 256 + i) << 2));
}

export function crc32_update(ptr: usize, len: usize, crc: u32): u32 {
  if (!ready) init();
  let c = ~crc;
  let i: usize = 0;
  const end = len & ~(<usize>15);
  for (; i < end; i += 16) {
    const a = load<u32>(ptr + i) ^ c;
    const b = load<u32>(ptr + i, 4);
    const d = load<u32>(ptr + i, 8);
    const e = load<u32>(ptr + i, 12);
    c = t(15, a & 0xff) ^ t(14, (a >>> 8) & 0xff) ^ t(13, (a >>> 16) & 0xff) ^ t(12, a >>> 24)
      ^ t(11, b & 0xff) ^ t(10, (b >>> 8) & 0xff) ^ t(9, (b >>> 16) & 0xff) ^ t(8, b >>> 24)
      ^ t(7, d & 0xff) ^ t(6, (d >>> 8) & 0xff) ^ t(5, (d >>> 16) & 0xff) ^ t(4, d >>> 24)
      ^ t(3, e & 0xff) ^ t(2, (e >>> 8) & 0xff) ^ t(1, (e >>> 16) & 0xff) ^ t(0, e >>> 24);
  }
  for (; i < len; i++) c = t(0, (c ^ <u32>load<u8>(ptr + i)) & 0xff) ^ (c >>> 8);
  return ~c;
}
