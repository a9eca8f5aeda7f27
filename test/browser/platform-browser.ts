import { reportLine } from '../shared/platform.ts';

globalThis.__thetaTestPlatform = {
  runtime: 'chromium',
  async readFixture(name) {
    const res = await fetch(`/fixtures/${encodeURIComponent(name)}`);
    if (!res.ok) throw new Error(`fixture ${name}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  },
  report(key, value) {
    console.log(reportLine(key, value));
  },
};
