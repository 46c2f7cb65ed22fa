// Benchmark peer: mcp-oauth-server 1.0.0 on Express 5 with its MemoryOAuthServerModel.
//
// Wired as its README and dist/*.d.ts describe: mcpAuthRouter for the OAuth endpoints,
// authenticateHandler as the consent confirm step, requireBearerAuth on a small JSON endpoint.
// The library has no consent page of its own (authorizationUrl is the app's), so this app
// serves a minimal one that echoes the authorization parameters as hidden form fields and
// posts them to authenticateHandler: the same browser steps as ours (page, then confirm).
// Rate limits are off everywhere, as they are in the other apps under test.
//
// Usage: node server.mjs PORT
import express from 'express';
import {
    MemoryOAuthServerModel,
    OAuthServer,
    authenticateHandler,
    getOAuthProtectedResourceMetadataUrl,
    mcpAuthRouter,
    requireBearerAuth,
} from 'mcp-oauth-server';

const port = Number(process.argv[2] ?? process.env.PORT ?? 3000);
const base = `http://127.0.0.1:${port}`;
const resource = new URL(`${base}/mcp`);
const USER = 'bench-user';

const provider = new OAuthServer({
    model: new MemoryOAuthServerModel(),
    issuerUrl: new URL(base),
    authorizationUrl: new URL(`${base}/consent`),
    resourceServerUrl: resource,
    scopesSupported: ['mcp:tools'],
});

const app = express();
app.disable('x-powered-by');
app.use(
    mcpAuthRouter({
        provider,
        resourceServerUrl: resource,
        authorizationOptions: { rateLimit: false },
        tokenOptions: { rateLimit: false },
        clientRegistrationOptions: { rateLimit: false },
        revocationOptions: { rateLimit: false },
    }),
);

const escapeHtml = (value) =>
    String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// The app's consent page: what a real deployment renders between /authorize and the confirm step.
app.get('/consent', (req, res) => {
    const fields = Object.entries(req.query)
        .filter(([, value]) => typeof value === 'string')
        .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
        .join('\n  ');
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(
        `<!doctype html><html><head><meta charset="utf-8"><title>Authorize</title></head><body>
<h1>Authorize <strong>${escapeHtml(req.query.client_id ?? '')}</strong></h1>
<form method="post" action="/confirm">
  ${fields}
  <button type="submit" name="decision" value="approve">Approve</button>
</form></body></html>`,
    );
});

// authenticateHandler is a router answering POST at its mount point.
app.use('/confirm', authenticateHandler({ provider, getUser: () => USER, rateLimit: false }));

app.post(
    '/mcp',
    requireBearerAuth({
        verifier: provider,
        requiredScopes: ['mcp:tools'],
        resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(resource),
        resource,
    }),
    (req, res) => {
        res.json({ subject: req.auth.userId, scopes: req.auth.scopes });
    },
);

const server = app.listen(port, '127.0.0.1');
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
