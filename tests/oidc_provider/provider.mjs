// A real OpenID provider for the gateway's OpenID Connect tests (tests/gateway/auth/oidc):
// oidc-provider on 127.0.0.1, on a free port (or <port>), its issuer
// http://127.0.0.1:<port>.
//
//   node provider.mjs <keys.json> [<port>]
//
// Its signing keys (one RSA, one P-256, one Ed25519, kids "rsa-1", "ec-1", "ed-1") are
// read from <keys.json>, or made and written there when the file does not exist: a second
// provider started on the same file signs with the same keys under another issuer.
//
// Once listening it prints one JSON line on stdout: {"issuer": "...", "kids": [...]}.
//
// Tokens: the client credentials grant of client "alice" (secret "alice-secret") with the
// resource indicator urn:plugmesh:<audience>:<alg>:<ttl seconds> gives a JWT access token
// whose aud is <audience>, signed with the provider's key of <alg> (RS256, ES256, EdDSA),
// expiring after <ttl seconds>.
//
// Test hooks, beside the provider's own routes:
//   POST /test/rotate       new keys of every kind (kids "<kind>-<n+1>"), published first in
//                           the JWKS and used to sign from then on; the old keys stay
//                           published, as in a real rotation. Answers {"kids": [...]}.
//   GET  /test/jwks-fetches how often the JWKS was served: {"count": n}.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const KINDS = {
  rsa: () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ec: () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ed: () => crypto.generateKeyPairSync('ed25519'),
};
const ALGS = { rsa: 'RS256', ec: 'ES256', ed: 'EdDSA' };

function generation(n) {
  return Object.entries(KINDS).map(([kind, make]) => ({
    ...make().privateKey.export({ format: 'jwk' }),
    kid: `${kind}-${n}`,
    alg: ALGS[kind],
    use: 'sig',
  }));
}

const keysPath = process.argv[2];
if (!keysPath) {
  console.error('usage: node provider.mjs <keys.json> [<port>]');
  process.exit(2);
}
let keys;
if (fs.existsSync(keysPath)) {
  keys = JSON.parse(fs.readFileSync(keysPath, 'utf8'));
} else {
  keys = generation(1);
  fs.writeFileSync(keysPath, JSON.stringify(keys), { mode: 0o600 });
}
let generations = Math.max(...keys.map((key) => Number(key.kid.split('-')[1])));
let jwksFetches = 0;

function resourceServer(indicator) {
  const [, , audience, alg, ttl] = indicator.split(':');
  return {
    scope: 'openid',
    audience,
    accessTokenTTL: Number(ttl),
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg } },
  };
}

function provider(issuer) {
  const made = new Provider(issuer, {
    jwks: { keys },
    clients: [
      {
        client_id: 'alice',
        client_secret: 'alice-secret',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
    ],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => resourceServer(indicator),
      },
    },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'] },
    extraTokenClaims: () => ({ email: 'alice@example.com' }),
  });
  made.on('server_error', (_ctx, err) => console.error('server_error', err));
  return made;
}

let current;
const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'POST' && path === '/test/rotate') {
    generations += 1;
    keys = [...generation(generations), ...keys];
    fs.writeFileSync(keysPath, JSON.stringify(keys), { mode: 0o600 });
    current = provider(current.issuer);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kids: keys.map((key) => key.kid) }));
    return;
  }
  if (req.method === 'GET' && path === '/test/jwks-fetches') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ count: jwksFetches }));
    return;
  }
  if (path === '/jwks') {
    jwksFetches += 1;
  }
  current.callback()(req, res);
});

server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  current = provider(`http://127.0.0.1:${port}`);
  console.log(JSON.stringify({ issuer: current.issuer, kids: keys.map((key) => key.kid) }));
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
