// Development OpenID Provider for the VDI platform: npm oidc-provider with static demo users,
// our own login form (unknown users and wrong passwords are refused, unlike devInteractions),
// consent granted automatically for our first-party clients, code + PKCE S256, refresh tokens
// and an RS256 key made at startup. HTTPS on 127.0.0.1 only. Never use it outside dev and tests.
//
//   node server.mjs --port 0 --cert cert.pem --key key.pem
//   (or DEV_IDP_PORT, DEV_IDP_CERT, DEV_IDP_KEY)
//
// Prints exactly one line to stdout, `DEV-IDP READY <issuer>`, once it listens; everything else
// goes to stderr.

import { generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

import { allowDashboardLoopback, clientBasedCORS } from './dashboard.mjs';

// oidc-provider prints its notices with console.info (stdout); stdout carries only READY.
console.info = console.error;

// Dev-only accounts. `sub` is the stable id a cluster maps to a user.
const USERS = {
  alice: { name: 'Alice Example', groups: ['staff'] },
  bob: { name: 'Bob Example', groups: ['staff'] },
  carol: { name: 'Carol Contractor', groups: ['contractors'] },
  admin: { name: 'VDI Admin', groups: ['vdi-admins'] },
};
const passwordOf = (user) => `${user}-password`;

// Public clients of the platform: the CLI and the dashboard, both on loopback redirects (a
// native client's loopback redirect URI matches on any port, RFC 8252 section 7.3). The
// dashboard, served by `vdi up` over HTTPS on a loopback origin, is also let in on
// `https://localhost:<port>/callback` and `https://127.0.0.1:<port>/callback` (see
// dashboardLoopback below).
const CLIENTS = [
  {
    client_id: 'vdi-cli',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  },
  {
    client_id: 'vdi-dashboard',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  },
];

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.DEV_IDP_PORT ?? '0' },
    cert: { type: 'string', default: process.env.DEV_IDP_CERT },
    key: { type: 'string', default: process.env.DEV_IDP_KEY },
  },
});
if (!args.cert || !args.key) {
  console.error('usage: node server.mjs --port <port|0> --cert <cert.pem> --key <key.pem>');
  process.exit(2);
}

function signingKeys() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' }] };
}

function configuration() {
  return {
    clients: CLIENTS,
    clientBasedCORS,
    jwks: signingKeys(),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // Claims travel in the ID token even when an access token is issued too: kube-apiserver's
    // OIDC mode reads the ID token only.
    conformIdTokenClaims: false,
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    responseTypes: ['code'],
    pkce: { required: () => true },
    // Our clients are public (no secret) and still get refresh tokens when they ask for
    // offline_access; oidc-provider rotates them on every use.
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const user = USERS[sub];
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            name: user.name,
            preferred_username: sub,
            email: `${sub}@example.test`,
            email_verified: true,
            groups: user.groups,
          };
        },
      };
    },
    ttl: {
      IdToken: 3600,
      AccessToken: 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<p>${escape(out.error)}: ${escape(out.error_description ?? '')}</p>`);
    },
  };
}

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const page = (title, body) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>` +
  `<body><h1>${escape(title)}</h1>${body}</body></html>`;

function loginForm(uid, clientId, error) {
  return page(
    'Sign in',
    `<p>Sign in to continue to <b>${escape(clientId)}</b> (dev IdP).</p>` +
      (error ? `<p id="error" role="alert">${escape(error)}</p>` : '') +
      `<form method="post" action="/interaction/${escape(uid)}/login">` +
      '<label>Username <input name="username" autocomplete="username" autofocus></label><br>' +
      '<label>Password <input name="password" type="password" autocomplete="current-password"></label><br>' +
      '<button type="submit">Sign in</button></form>',
  );
}

function passwordMatches(user, password) {
  if (!Object.hasOwn(USERS, user)) return false;
  const want = Buffer.from(passwordOf(user));
  const got = Buffer.from(String(password));
  return want.length === got.length && timingSafeEqual(want, got);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

// Consent for our first-party clients is granted without asking: everything requested.
async function grantConsent(provider, details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return { consent: { grantId: await grant.save() } };
}

async function interaction(provider, req, res, path) {
  const details = await provider.interactionDetails(req, res);
  const [, uid, action] = path;
  if (uid !== details.uid) return send(res, 400, page('Error', '<p>interaction mismatch</p>'));
  const clientId = details.params.client_id;
  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'login') return send(res, 200, loginForm(uid, clientId));
    if (details.prompt.name === 'consent') {
      return provider.interactionFinished(req, res, await grantConsent(provider, details), {
        mergeWithLastSubmission: true,
      });
    }
    return send(res, 400, page('Error', `<p>unsupported prompt ${escape(details.prompt.name)}</p>`));
  }
  if (req.method === 'POST' && action === 'login' && details.prompt.name === 'login') {
    const form = await readForm(req);
    const user = form.get('username') ?? '';
    if (!passwordMatches(user, form.get('password') ?? '')) {
      return send(res, 401, loginForm(uid, clientId, 'Unknown user or wrong password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: user } }, {
      mergeWithLastSubmission: false,
    });
  }
  return send(res, 405, page('Error', '<p>method not allowed</p>'));
}

const server = createServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) });
server.listen(Number(args.port), '127.0.0.1', () => {
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration());
  allowDashboardLoopback(provider);
  const oidc = provider.callback();
  server.on('request', (req, res) => {
    const path = new URL(req.url, issuer).pathname.match(/^\/interaction\/([^/]+)(?:\/(login))?\/?$/);
    if (!path) return oidc(req, res);
    interaction(provider, req, res, path).catch((err) => {
      console.error('interaction failed:', err);
      if (!res.headersSent) send(res, 400, page('Error', `<p>${escape(err.message)}</p>`));
    });
  });
  process.stdout.write(`DEV-IDP READY ${issuer}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
