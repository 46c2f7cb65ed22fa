// panva/node-oidc-provider as a foreign authorization server for tests/interop/test_oidc_provider.py.
//
// usage: node provider.mjs <resource URL> <other resource URL>
// Prints "ISSUER <url>" once listening on 127.0.0.1 (a free port), "KID <kid>" for its signing key.
//
// The provider is mounted under /tenant, so its issuer has a path. Mounted like this it serves its
// metadata only *under* the mount: /tenant/.well-known/openid-configuration (OpenID Connect rule)
// and /tenant/.well-known/oauth-authorization-server (the OIDC-style appended form). The RFC 8414
// §3.1 location, /.well-known/oauth-authorization-server/tenant, lies outside its mount, so this
// host server routes it to the provider's own discovery handler, as a reverse proxy in front of a
// real deployment would.
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const [resource, otherResource] = process.argv.slice(2);
const MOUNT = '/tenant';
const RFC8414_PATH = `/.well-known/oauth-authorization-server${MOUNT}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const kid = crypto.randomUUID();
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };

function resourceServerInfo(audience, format) {
  return {
    scope: 'mcp:tools',
    audience,
    accessTokenFormat: format,
    jwt: { sign: { alg: 'RS256' } },
  };
}

const machine = (clientId, extra = {}) => ({
  client_id: clientId,
  client_secret: `${clientId}-secret`,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  scope: 'mcp:tools',
  ...extra,
});

let provider;
const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === RFC8414_PATH) {
    req.baseUrl = MOUNT; // endpoint URLs in the document keep the mount
    req.url = '/.well-known/oauth-authorization-server';
    return provider.callback()(req, res);
  }
  if (path === MOUNT || path.startsWith(`${MOUNT}/`)) {
    req.baseUrl = MOUNT;
    req.originalUrl = req.url;
    req.url = req.url.slice(MOUNT.length) || '/';
    return provider.callback()(req, res);
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  return res.end('{"error":"not_found"}');
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}${MOUNT}`;
  provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    clients: [
      machine('mcp-machine'),
      machine('mcp-short-lived'),
      machine('mcp-opaque'),
      // The resource server's own credentials, for RFC 7662 introspection of opaque tokens.
      { ...machine('mcp-resource'), grant_types: [], scope: undefined },
    ],
    scopes: ['openid', 'offline_access', 'mcp:tools'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator, client) => {
          if (indicator === resource) {
            return resourceServerInfo(resource, client.clientId === 'mcp-opaque' ? 'opaque' : 'jwt');
          }
          if (indicator === otherResource) return resourceServerInfo(otherResource, 'jwt');
          throw new Error(`unknown resource indicator ${indicator}`);
        },
      },
    },
    ttl: {
      // One second for mcp-short-lived, so the test sees a real expiry quickly.
      ClientCredentials: (ctx, token, client) => (client.clientId === 'mcp-short-lived' ? 1 : 600),
    },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  console.log(`KID ${kid}`);
  console.log(`ISSUER ${issuer}`);
});
