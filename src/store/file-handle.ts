/**
 * A StoreReadHandle over an open file handle with positional reads (node:fs/promises' FileHandle,
 * or anything shaped like it), shared by the Node store and the repository library's fs adapter.
 */
import type { StoreReadHandle } from './types.ts';

export interface PositionalFileHandle {
  stat(): Promise<{ size: number | bigint }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** Wrap an open handle; it is closed if reading its size fails. */
export async function readHandle(fh: PositionalFileHandle): Promise<StoreReadHandle> {
  try {
    const { size } = await fh.stat();
    return {
      size: Number(size),
      async read(offset, length) {
        const buf = new Uint8Array(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break; // end of file
          got += bytesRead;
        }
        return got === length ? buf : buf.subarray(0, got);
      },
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}
