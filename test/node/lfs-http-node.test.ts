// git's http.<url>.* matching as the Node LFS edge applies it (src/node/lfs-http-node.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { configForUrl, configListForUrl, urlMatchScore } from '../../src/node/lfs/http-node.ts';

const t = suite('lfs http config (node)');

t('urlMatchScore: scheme, host (with *.), port, path prefix on a / boundary, user', () => {
  const u = 'https://git.example.com/org/repo.git/info/lfs/objects/batch';
  assert.ok(urlMatchScore('https://git.example.com', u) >= 0);
  assert.ok(urlMatchScore('https://*.example.com/org', u) > urlMatchScore('https://git.example.com', u));
  assert.is(urlMatchScore('http://git.example.com', u), -1, 'scheme');
  assert.is(urlMatchScore('https://git.example.com:8443', u), -1, 'port');
  assert.ok(urlMatchScore('https://git.example.com:443/org/', u) >= 0, 'default port');
  assert.is(urlMatchScore('https://git.example.com/or', u), -1, 'not on a / boundary');
  assert.is(urlMatchScore('https://bob@git.example.com', u), -1, 'user must match');
});

t('configForUrl: the longest match wins over the plain key; configListForUrl: all values, empty clears', () => {
  const cfg = [
    { key: 'http.sslverify', value: 'true' },
    { key: 'http.https://git.example.com/org.sslverify', value: 'false' },
    { key: 'http.https://other.test/.sslverify', value: 'maybe' },
    { key: 'http.extraheader', value: 'X-A: 1' },
    { key: 'http.https://git.example.com/.extraheader', value: 'Authorization: Basic abc' },
    { key: 'http.https://other.test/.extraheader', value: 'X-Other: 1' },
    { key: 'lfs.https://git.example.com/org/repo.git/info/lfs.access', value: 'basic' },
  ];
  const u = 'https://git.example.com/org/repo.git/info/lfs/objects/batch';
  assert.is(configForUrl(cfg, 'http', 'sslVerify', u), 'false');
  assert.is(configForUrl(cfg, 'http', 'sslVerify', 'https://elsewhere.test/x'), 'true');
  assert.equal(configListForUrl(cfg, 'http', 'extraHeader', u), ['X-A: 1', 'Authorization: Basic abc']);
  assert.equal(configListForUrl([...cfg, { key: 'http.extraheader', value: '' }], 'http', 'extraheader', u), []);
  assert.is(configForUrl(cfg, 'lfs', 'access', 'https://git.example.com/org/repo.git/info/lfs'), 'basic');
});

t.run();
