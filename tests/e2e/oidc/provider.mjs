// A real OpenID Connect provider on 127.0.0.1 for tests/e2e/test_browser_signin.py.
//
// It is panva's certified `oidc-provider` (package.json pins the version, package-lock.json
// every dependency; install with `npm ci --prefix tests/e2e/oidc`), configured with
//
// * one static confidential client (client_secret_basic, authorization code flow), whose
//   redirect URI and post-logout redirect URI are the app's /oauth2callback;
// * the test's users, each with a password, an e-mail address and groups (in the ID token:
//   Streamlit reads the identity from the ID token, not from the userinfo endpoint);
// * a minimal sign-in form of our own (no outside fonts or scripts, unlike the package's
//   development pages) that checks the user name and password; consent is given at once for
//   this first-party client, as an organisation's provider does for its own apps;
// * RP-initiated logout with a plain confirmation form ("Yes, sign me out").
//
// Test only: in-memory storage, generated signing keys, plain HTTP on 127.0.0.1.
//
// Usage: node provider.mjs CONFIG.json
//   {"port": 9000, "client_id": "...", "client_secret": "...", "redirect_uri": "...",
//    "users": {"ada": {"password": "...", "email": "...", "name": "...", "groups": [...]}}}
// Prints "ready <issuer>" on stdout once it listens.

import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const users = config.users;

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:sans-serif;max-width:22rem;margin:3rem auto}
input,button{display:block;width:100%;margin:.5rem 0;padding:.5rem;font-size:1rem}
.error{color:#a00}</style></head><body><h1>${title}</h1>${body}</body></html>`;
}

function loginForm(uid, message = '') {
  const error = message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : '';
  return page('Test provider: sign in', `${error}
<form method="post" action="/interaction/${escapeHtml(uid)}" autocomplete="off">
  <label>User name <input name="login" required autofocus></label>
  <label>Password <input name="password" type="password" required></label>
  <button type="submit">Sign in</button>
</form>`);
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: [config.redirect_uri],
    post_logout_redirect_uris: [config.redirect_uri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, sub) {
    const user = users[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub, name: user.name, email: user.email, email_verified: true, groups: user.groups,
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
  },
  conformIdTokenClaims: false, // the claims go into the ID token (Streamlit reads only it)
  cookies: { keys: ['test-provider-cookie-key-not-a-secret'] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Test provider: sign out', `${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Test provider: signed out', '<p>You are signed out.</p>');
      },
    },
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  const send = (html) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(html);
  };
  if (details.prompt.name === 'login') {
    if (req.method !== 'POST') return send(loginForm(uid));
    const form = await readForm(req);
    const login = form.get('login') || '';
    const user = Object.hasOwn(users, login) ? users[login] : undefined;
    if (!user || user.password !== form.get('password')) {
      return send(loginForm(uid, 'Unknown user name or wrong password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: login } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (details.prompt.name === 'consent') {
    const { params, session, grantId } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const result = { consent: { grantId: await grant.save() } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }
  res.writeHead(501).end(`prompt ${details.prompt.name} is not implemented`);
  return undefined;
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([\w-]+)$/.exec(new URL(req.url, issuer).pathname);
  if (!match) return callback(req, res);
  return interaction(req, res, match[1]).catch((error) => {
    console.error('interaction failed', error);
    if (!res.headersSent) res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end('The sign-in request expired or is invalid: start again from the app.');
  });
});
server.listen(config.port, '127.0.0.1', () => console.log(`ready ${issuer}`));
