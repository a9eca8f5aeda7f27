// deno-lint-ignore-file
import { reportLine } from '../shared/platform.ts';
declare const Deno: any;

const root = new URL('../../', import.meta.url);
const fixtures: URL = Deno.env.get('THETA_FIXTURES')
  ? new URL('file://' + Deno.env.get('THETA_FIXTURES').replace(/\/?$/, '/'))
  : new URL('test/fixtures/', root);

globalThis.__thetaTestPlatform = {
  runtime: 'deno',
  async readFixture(name: string) {
    return await Deno.readFile(new URL(name, fixtures));
  },
  report(key: string, value: string) {
    console.log('\n' + reportLine(key, value));
  },
};
