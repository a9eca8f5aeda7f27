// LFS endpoint discovery (git-lfs's rules) as pure functions over configuration values.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { discoverLfsEndpoint, endpointFromGitUrl, rewriteUrl } from '../../src/lfs/endpoint.ts';

const test = suite('lfs endpoint discovery');
const url = (u: string) => endpointFromGitUrl(u)?.url;

test('derived from clone URLs the way git-lfs does', () => {
  assert.is(url('https://git-server.com/foo/bar'), 'https://git-server.com/foo/bar.git/info/lfs');
  assert.is(url('https://git-server.com/foo/bar.git'), 'https://git-server.com/foo/bar.git/info/lfs');
  assert.is(url('https://git-server.com/foo/bar.git/'), 'https://git-server.com/foo/bar.git/info/lfs');
  assert.is(url('http://127.0.0.1:8080/repo'), 'http://127.0.0.1:8080/repo.git/info/lfs');
  assert.is(url('git@git-server.com:foo/bar.git'), 'https://git-server.com/foo/bar.git/info/lfs');
  assert.is(url('git-server.com:foo/bar'), 'https://git-server.com/foo/bar.git/info/lfs');
  assert.is(url('ssh://git@git-server.com:2222/foo/bar.git'), 'https://git-server.com/foo/bar.git/info/lfs');
  assert.is(url('git+ssh://git-server.com/foo/bar'), 'https://git-server.com/foo/bar.git/info/lfs');
  assert.is(url('git://git-server.com/foo/bar.git'), 'https://git-server.com/foo/bar.git/info/lfs');
  assert.is(endpointFromGitUrl('/srv/repos/model.git')?.kind, 'file');
  assert.is(endpointFromGitUrl('file:///srv/repos/model.git')?.kind, 'file');
  assert.is(endpointFromGitUrl('C:\\repos\\model')?.kind, 'file');
  assert.is(endpointFromGitUrl('ftp://x/y'), null);
  const creds = endpointFromGitUrl('https://alice:s%3Acret@host/r.git')!;
  assert.equal([creds.url, creds.username, creds.password], ['https://host/r.git/info/lfs', 'alice', 's:cret']);
});

test('precedence: lfs.pushurl (upload), lfs.url, remote lfsurl, .lfsconfig, then the remote URL', () => {
  const config = {
    'remote.origin.url': 'https://host/org/model',
    'remote.origin.pushurl': 'https://push-host/org/model.git',
    'remote.Fork.url': 'git@fork:me/model.git',
  };
  assert.equal(discoverLfsEndpoint({ config }), { kind: 'http', url: 'https://host/org/model.git/info/lfs', source: 'remote.origin.url', username: undefined, password: undefined });
  assert.is(discoverLfsEndpoint({ config, operation: 'upload' })!.url, 'https://push-host/org/model.git/info/lfs');
  assert.is(discoverLfsEndpoint({ config, remote: 'Fork' })!.url, 'https://fork/me/model.git/info/lfs', 'subsection case kept');
  const lfsconfig = { 'lfs.url': 'https://lfs-from-file/x', 'core.sshCommand': 'evil' };
  const fromFile = discoverLfsEndpoint({ config, lfsconfig })!;
  assert.equal([fromFile.url, fromFile.source], ['https://lfs-from-file/x', '.lfsconfig lfs.url']);
  const withRemote = { ...config, 'remote.origin.lfsurl': 'https://lfs-remote/y/' };
  assert.is(discoverLfsEndpoint({ config: withRemote, lfsconfig })!.url, 'https://lfs-from-file/x', '.lfsconfig lfs.url beats remote lfsurl (git-lfs order)');
  assert.is(discoverLfsEndpoint({ config: withRemote })!.url, 'https://lfs-remote/y');
  const withLfsUrl = { ...withRemote, 'LFS.URL': 'https://top/z', 'lfs.pushurl': 'https://top-push/z' };
  assert.is(discoverLfsEndpoint({ config: withLfsUrl, lfsconfig })!.url, 'https://top/z');
  assert.is(discoverLfsEndpoint({ config: withLfsUrl, operation: 'upload' })!.url, 'https://top-push/z');
  assert.is(discoverLfsEndpoint({ config: {}, remote: 'nowhere' }), null);
  assert.is(discoverLfsEndpoint({ config: {}, remote: 'https://h/a/b' })!.url, 'https://h/a/b.git/info/lfs', 'a URL given as the remote');
});

test('url.<base>.insteadOf rewriting (longest prefix; pushInsteadOf for uploads)', () => {
  const config = new Map<string, string | string[]>([
    ['url.https://github.com/.insteadOf', ['gh:', 'github:']],
    ['url.https://mirror.example/.insteadOf', 'gh:big/'],
    ['url.https://push.example/.pushInsteadOf', 'gh:'],
    ['remote.origin.url', 'gh:big/model'],
  ]);
  assert.is(rewriteUrl('github:a/b', config), 'https://github.com/a/b');
  assert.is(rewriteUrl('gh:big/model', config), 'https://mirror.example/model');
  assert.is(discoverLfsEndpoint({ config })!.url, 'https://mirror.example/model.git/info/lfs');
  assert.is(discoverLfsEndpoint({ config, operation: 'upload' })!.url, 'https://push.example/big/model.git/info/lfs');
});

test.run();
