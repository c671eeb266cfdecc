// A real OpenID provider for the identity tests: the npm package oidc-provider
// (OpenID Certified) on loopback, with a small control port the C++ tests drive.
//
//   node oidc-test-provider.mjs            prints one line, then serves until SIGTERM:
//   READY issuer=http://127.0.0.1:<p> control=http://127.0.0.1:<c>
//
// Control port (plain HTTP, loopback only):
//   GET  /token?client=<id>             a client-credentials access token (RFC 9068 JWT)
//   GET  /token?user=<account>          a user's access token, obtained through the real
//                                       authorization-code flow with PKCE (login and consent
//                                       submitted like a browser would)
//   POST /alg?alg=RS256|PS256|ES256     the algorithm the next access tokens are signed with
//   POST /rotate                        new signing keys (new kids); the provider restarts on
//                                       the same port and publishes only the new keys
//   POST /stop  /  POST /start          close / reopen the provider's port
//
// Accounts and clients are shaped like a Keycloak realm: roles in realm_access.roles,
// clinics in a namespaced claim, SMART launch context (patient, fhirUser).
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const RESOURCE = 'https://physio.example/api';
const AUDIENCE = 'physio-backend';
const TENANT = process.env.OIDC_TEST_TENANT || 'chain-a';

const accounts = {
  'clinician-north': { realm_access: { roles: ['physio-clinician', 'offline_access'] }, 'https://physio.example/clinics': ['north'] },
  'clinician-south': { realm_access: { roles: ['physio-clinician'] }, 'https://physio.example/clinics': ['south'] },
  'lead-physio': { realm_access: { roles: ['physio-clinician', 'physio-org-wide'] } },
  'patient-p1': { realm_access: { roles: ['physio-patient'] }, patient: 'oidc-patient-1', fhirUser: 'Patient/oidc-patient-1' },
};

const clients = [
  {
    client_id: 'chain-integration', client_secret: 'integration-secret-0123456789abcdef',
    grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
    scope: 'system/*.read physio.integrate',
  },
  {
    client_id: 'clinic-app', token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['http://127.0.0.1/callback'],
    scope: 'openid physio',
  },
];

let signingAlg = 'RS256';
let keys = await newKeys();
let provider;
let server;
let port = 0;

async function newKeys() {
  const jwks = [];
  const rsa = await jose.generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const rsaJwk = await jose.exportJWK(rsa.privateKey);
  jwks.push({ ...rsaJwk, kid: 'rsa-' + crypto.randomUUID().slice(0, 8), use: 'sig' });
  const ec = await jose.generateKeyPair('ES256', { extractable: true });
  const ecJwk = await jose.exportJWK(ec.privateKey);
  jwks.push({ ...ecJwk, kid: 'ec-' + crypto.randomUUID().slice(0, 8), use: 'sig' });
  return { keys: jwks };
}

function makeProvider(issuer) {
  const p = new Provider(issuer, {
    clients,
    scopes: ['openid', 'offline_access', 'physio', 'system/*.read', 'physio.integrate'],
    jwks: keys,
    findAccount: async (_ctx, id) => (accounts[id] ? { accountId: id, claims: async () => ({ sub: id }) } : undefined),
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Error('unknown resource');
          return {
            scope: 'physio system/*.read physio.integrate',
            audience: AUDIENCE,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signingAlg } },
          };
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      if (token.accountId && accounts[token.accountId]) return { tenant: TENANT, ...accounts[token.accountId] };
      return { tenant: TENANT };
    },
    pkce: { required: () => true },
    enabledJWA: { authorizationSigningAlgValues: ['RS256', 'PS256', 'ES256'] },
  });
  p.proxy = false;
  return p;
}

function listen(issuerPort) {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => provider.callback()(req, res));
    s.listen(issuerPort, '127.0.0.1', () => resolve(s));
  });
}

async function start() {
  if (server) return;
  if (!port) {
    // Pick the port first: the issuer URL names it.
    const probe = await listen(0);
    port = probe.address().port;
    await new Promise((r) => probe.close(r));
  }
  provider = makeProvider(`http://127.0.0.1:${port}`);
  server = await listen(port);
}

async function stop() {
  if (!server) return;
  const s = server;
  server = undefined;
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
}

function cookieJar() {
  const jar = new Map();
  return {
    take(res) {
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair.indexOf('=');
        jar.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
    },
    header() { return [...jar].map(([k, v]) => `${k}=${v}`).join('; '); },
  };
}

const issuerUrl = () => `http://127.0.0.1:${port}`;

async function clientToken(clientId) {
  const client = clients.find((c) => c.client_id === clientId);
  if (!client) throw new Error('unknown client');
  const res = await fetch(`${issuerUrl()}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64'),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope: client.scope }),
  });
  const body = await res.json();
  if (!body.access_token) throw new Error('token endpoint: ' + JSON.stringify(body));
  return body.access_token;
}

// The authorization-code flow with PKCE, as a browser would walk it.
async function userToken(account) {
  const jar = cookieJar();
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const redirectUri = 'http://127.0.0.1/callback';
  let url = `${issuerUrl()}/auth?` + new URLSearchParams({
    client_id: 'clinic-app', response_type: 'code', redirect_uri: redirectUri, scope: 'openid physio',
    code_challenge: challenge, code_challenge_method: 'S256', resource: RESOURCE,
  });
  let body;
  for (let step = 0; step < 12; step += 1) {
    const res = await fetch(url, {
      method: body ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { cookie: jar.header(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body,
    });
    jar.take(res);
    body = undefined;
    const location = res.headers.get('location');
    if (location && location.startsWith(redirectUri)) {
      const code = new URL(location).searchParams.get('code');
      if (!code) throw new Error('authorization failed: ' + location);
      const tokenRes = await fetch(`${issuerUrl()}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
          client_id: 'clinic-app', resource: RESOURCE,
        }),
      });
      const tokens = await tokenRes.json();
      if (!tokens.access_token) throw new Error('token endpoint: ' + JSON.stringify(tokens));
      return tokens.access_token;
    }
    if (location) {
      url = new URL(location, issuerUrl()).toString();
      continue;
    }
    // An interaction page: submit its form (login, then consent).
    const html = await res.text();
    const action = /action="([^"]+)"/.exec(html);
    if (!action) throw new Error(`unexpected page (${res.status})`);
    url = new URL(action[1], issuerUrl()).toString();
    body = html.includes('name="login"')
      ? new URLSearchParams({ prompt: 'login', login: account, password: 'any' }).toString()
      : new URLSearchParams({ prompt: 'consent' }).toString();
  }
  throw new Error('authorization flow did not finish');
}

const control = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  try {
    let out = 'ok';
    if (url.pathname === '/token' && url.searchParams.get('client')) {
      out = await clientToken(url.searchParams.get('client'));
    } else if (url.pathname === '/token' && url.searchParams.get('user')) {
      out = await userToken(url.searchParams.get('user'));
    } else if (url.pathname === '/alg') {
      signingAlg = url.searchParams.get('alg');
    } else if (url.pathname === '/rotate') {
      keys = await newKeys();
      const wasRunning = Boolean(server);
      await stop();
      if (wasRunning) await start();
      else provider = makeProvider(issuerUrl());
    } else if (url.pathname === '/stop') {
      await stop();
    } else if (url.pathname === '/start') {
      await start();
    } else {
      res.writeHead(404).end('unknown');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(out);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e && e.message));
  }
});

await start();
control.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY issuer=${issuerUrl()} control=http://127.0.0.1:${control.address().port}\n`);
});
// The test owns this process: it ends it with SIGTERM (or the kernel does, when the test dies).
process.on('SIGTERM', () => process.exit(0));
