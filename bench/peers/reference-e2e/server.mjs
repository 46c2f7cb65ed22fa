// Benchmark peer: issue #17's end-to-end reference for the example (`python -m example.server`).
//
// npm mcp-oauth-server 1.0.0 on Express 5 with its MemoryOAuthServerModel (wired as
// ../mcp-oauth-server/server.mjs is), plus what the example has and that peer lacks:
// - a sign-in + consent form: the password is checked with argon2id (m=65536 KiB, t=3, p=4,
//   npm `argon2`, the same reference C implementation argon2-cffi wraps, on libuv's thread pool
//   as the example runs it on a thread), and a success starts a stateless HMAC-signed session
//   cookie, so, as on the example, the password is asked once per browser session and the
//   page then asks only for the decision;
// - the TypeScript MCP SDK's MCP server at /mcp behind requireBearerAuth, streamable HTTP,
//   stateless with JSON answers (the SDK's documented stateless pattern: a server and a
//   transport per request), the same four tools and one prompt as the example.
// Rate limits are off everywhere, as they are in the other apps under test.
//
// Usage: node server.mjs PORT
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import argon2 from 'argon2';
import express from 'express';
import {
    MemoryOAuthServerModel,
    OAuthServer,
    authenticateHandler,
    getOAuthProtectedResourceMetadataUrl,
    mcpAuthRouter,
    requireBearerAuth,
} from 'mcp-oauth-server';
import { z } from 'zod';

const port = Number(process.argv[2] ?? process.env.PORT ?? 3000);
const base = `http://127.0.0.1:${port}`;
const resource = new URL(`${base}/mcp`);

// The example's users and hashing parameters (passlib's argon2 defaults there: argon2id v19).
const ARGON2 = { type: argon2.argon2id, memoryCost: 65536, timeCost: 3, parallelism: 4 };
const users = new Map([
    ['demo', await argon2.hash('demo', ARGON2)],
    ['guest', await argon2.hash('guest', ARGON2)],
]);
const dummyHash = await argon2.hash('not a password', ARGON2);

// The example's session cookie: base64url(user).expires.HMAC-SHA256 tag, HttpOnly, SameSite=Lax.
const SESSION = 'example_session';
const sessionKey = randomBytes(32);
const LIFETIME = 28_800;
const tag = (body) => createHmac('sha256', sessionKey).update(`session\0${body}`).digest('base64url');

function issueSession(user) {
    const body = `${Buffer.from(user).toString('base64url')}.${Math.floor(Date.now() / 1000) + LIFETIME}`;
    return `${body}.${tag(body)}`;
}

function sessionUser(req) {
    const header = req.headers.cookie ?? '';
    const raw = header.split(';').map((c) => c.trim()).find((c) => c.startsWith(`${SESSION}=`));
    const value = raw?.slice(SESSION.length + 1);
    if (!value || value.length > 1024) return undefined;
    const parts = value.split('.');
    if (parts.length !== 3) return undefined;
    const [name, expires, mac] = parts;
    const expected = Buffer.from(tag(`${name}.${expires}`));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    if (Number(expires) < Date.now() / 1000) return undefined;
    const user = Buffer.from(name, 'base64url').toString();
    return users.has(user) ? user : undefined;
}

async function signIn(username, password) {
    if (typeof username !== 'string' || typeof password !== 'string' || !username || !password) return undefined;
    const hash = users.get(username.trim());
    const ok = await argon2.verify(hash ?? dummyHash, password);
    return ok && hash ? username.trim() : undefined;
}

const provider = new OAuthServer({
    model: new MemoryOAuthServerModel(),
    issuerUrl: new URL(base),
    authorizationUrl: new URL(`${base}/consent`),
    resourceServerUrl: resource,
    scopesSupported: ['mcp:tools', 'mcp:prompts', 'mcp:admin'],
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

const AUTH_PARAMS = ['response_type', 'client_id', 'redirect_uri', 'code_challenge', 'code_challenge_method',
    'state', 'scope', 'resource'];

// The sign-in + consent page: the authorization parameters as hidden fields, and username and
// password fields unless a session cookie already names the user.
function consentPage(params, user, error) {
    const fields = AUTH_PARAMS.filter((name) => typeof params[name] === 'string')
        .map((name) => `<input type="hidden" name="${name}" value="${escapeHtml(params[name])}">`)
        .join('\n  ');
    const login = user
        ? `<p>Signed in as <strong>${escapeHtml(user)}</strong>.</p>`
        : `<label>Username <input type="text" name="username" autocomplete="username"></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>`;
    return `<!doctype html><html><head><meta charset="utf-8"><title>Authorize</title></head><body>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<h1>Authorize <strong>${escapeHtml(params.client_id ?? '')}</strong></h1>
<p>It asks for: ${escapeHtml(params.scope ?? '')}</p>
<form method="post" action="/confirm">
  ${fields}
  ${login}
  <button type="submit" name="decision" value="approve">Approve</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>`;
}

app.get('/consent', (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(consentPage(req.query, sessionUser(req)));
});

// The confirm step: who is signing (session, else the posted password), then the library's
// authenticateHandler issues the code (a router answering POST at its mount point).
app.use(
    '/confirm',
    express.urlencoded({ extended: false }),
    async (req, res, next) => {
        const body = req.body ?? {};
        let user = sessionUser(req);
        if (!user) {
            user = await signIn(body.username, body.password);
            if (!user) {
                res.setHeader('Cache-Control', 'no-store');
                res.status(401).type('html').send(consentPage(body, undefined, 'Check your username and password.'));
                return;
            }
            res.append('Set-Cookie', `${SESSION}=${issueSession(user)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${LIFETIME}`);
        }
        if (body.decision !== 'approve') {
            const target = new URL(String(body.redirect_uri));
            target.searchParams.set('error', 'access_denied');
            if (body.state) target.searchParams.set('state', String(body.state));
            res.redirect(302, target.href);
            return;
        }
        req.benchUser = user;
        next();
    },
    authenticateHandler({ provider, getUser: (req) => req.benchUser, rateLimit: false }),
);

function buildMcpServer(auth) {
    const server = new McpServer(
        { name: 'reference example', version: '1.0.0' },
        { instructions: 'A demo MCP server behind mcp-oauth-server.' },
    );
    const text = (value) => ({ content: [{ type: 'text', text: typeof value === 'string' ? value : JSON.stringify(value) }] });
    server.registerTool('whoami', { description: 'Who is calling.' },
        () => text({ user: auth.userId, client_id: auth.clientId, scopes: [...auth.scopes].sort() }));
    server.registerTool('echo', { description: 'Return text unchanged.', inputSchema: { text: z.string() } },
        ({ text: value }) => text(value));
    server.registerTool('get_time', { description: "The server's current time." },
        () => text(new Date().toISOString()));
    server.registerTool('protected-data', { description: 'Data only an admin may read.' },
        () => text({ secret_plan: 'world domination, phase 2', read_by: auth.userId }));
    server.registerPrompt('greeting', { description: 'A friendly greeting.', argsSchema: { name: z.string().optional() } },
        ({ name }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${name ?? 'there'}!` } }] }));
    return server;
}

app.post(
    '/mcp',
    requireBearerAuth({
        verifier: provider,
        requiredScopes: ['mcp:tools'],
        resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(resource),
        resource,
    }),
    express.json(),
    async (req, res) => {
        const server = buildMcpServer(req.auth);
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
        res.on('close', () => {
            transport.close();
            server.close();
        });
        await server.connect(transport);
        await transport.handleRequest(req, res, req.body);
    },
);

const server = app.listen(port, '127.0.0.1');
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
