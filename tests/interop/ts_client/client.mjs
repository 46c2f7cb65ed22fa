// The TypeScript MCP SDK client against oauth_server, driven by test_typescript_sdk_client.py.
//
// Usage: node client.mjs <MCP server URL>
// Protocol on stdout, one line each:  AUTHORIZE <url>  (the test plays the browser and is
// redirected to our loopback callback), then  TOOLS <json>  and  WHOAMI <json>.
// Anything else goes to stderr; a failure exits with 1.
import { createServer } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const serverUrl = new URL(process.argv[2] ?? 'http://localhost:8000/mcp');

// RFC 8252 §7.3: a loopback redirect on 127.0.0.1 with a port the OS picks.
let deliverCode;
let failAuthorization;
const codeArrived = new Promise((resolve, reject) => {
  deliverCode = resolve;
  failAuthorization = reject;
});
const callbackServer = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (url.pathname !== '/callback') {
    res.writeHead(404).end();
    return;
  }
  const code = url.searchParams.get('code');
  res.writeHead(200, { 'Content-Type': 'text/plain' }).end(code ? 'Signed in.' : 'Authorization failed.');
  if (code) deliverCode(code);
  else failAuthorization(new Error(`authorization failed: ${url.searchParams.get('error')}`));
});
await new Promise((resolve) => callbackServer.listen(0, '127.0.0.1', resolve));
const redirectUrl = `http://127.0.0.1:${callbackServer.address().port}/callback`;

/** The SDK's OAuthClientProvider interface, kept in memory for one run. */
class InMemoryProvider {
  constructor() {
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'TypeScript SDK interop client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this._clientInformation; }
  saveClientInformation(info) { this._clientInformation = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; }
  redirectToAuthorization(authorizationUrl) {
    // A real app opens the browser here; the test is the browser.
    process.stdout.write(`AUTHORIZE ${authorizationUrl.toString()}\n`);
  }
  saveCodeVerifier(verifier) { this._codeVerifier = verifier; }
  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }
}

const provider = new InMemoryProvider();
const client = new Client({ name: 'oauth-server-interop', version: '1.0.0' }, { capabilities: {} });

async function connect() {
  const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    const timeout = setTimeout(() => failAuthorization(new Error('no authorization callback within 60 s')), 60_000);
    const code = await codeArrived;
    clearTimeout(timeout);
    await transport.finishAuth(code);
    await client.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider }));
  }
}

try {
  await connect();
  const tools = await client.listTools();
  process.stdout.write(`TOOLS ${JSON.stringify(tools.tools.map((tool) => tool.name))}\n`);
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  if (result.isError) throw new Error(`whoami failed: ${JSON.stringify(result.content)}`);
  // The tool returns an object: the SDK hands it over as structuredContent (and as JSON text).
  process.stdout.write(`WHOAMI ${JSON.stringify(result.structuredContent ?? JSON.parse(result.content[0].text))}\n`);
  await client.close();
  callbackServer.close();
  process.exit(0);
} catch (error) {
  console.error(error);
  process.exit(1);
}
