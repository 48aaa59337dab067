// A real OpenID Provider (npm oidc-provider) for readroom's tests, on 127.0.0.1.
//
//   node tests/js/oidc-provider.mjs <config.json>
//
// config.json: { "port": 0, "clients": [{ client_id, client_secret, redirect_uris,
//   post_logout_redirect_uris }], "users": [{ sub, preferred_username, name, email, groups,
//   acr?, amr? }] }
// Every start generates a fresh RSA signing key with a new `kid`, so restarting on the same port
// rotates the provider's keys. The interaction step auto-approves: the user is the one named by
// the authorization request's `login_hint` (default: the first user); consent is implied.
// Prints `READY <issuer>` once listening.
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";

import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const users = config.users;

process.stdout.on("error", () => {});
process.stderr.on("error", () => {});

const server = http.createServer();
await new Promise((resolve) => server.listen(config.port || 0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), use: "sig", alg: "RS256" };

const byHint = (hint) => users.find((u) => u.preferred_username === hint || u.sub === hint) || users[0];

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    id_token_signed_response_alg: "RS256",
    ...c,
  })),
  jwks: { keys: [jwk] },
  pkce: { required: () => true },
  scopes: ["openid", "profile", "email", "groups"],
  claims: {
    // acr/amr ride on the openid scope so every ID token carries how the user signed in.
    openid: ["sub", "acr", "amr"],
    profile: ["name", "preferred_username"],
    email: ["email"],
    groups: ["groups"],
  },
  acrValues: ["urn:readroom:pwd", "urn:readroom:mfa"],
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // Sign-out confirmation auto-submits (no user in tests to click it).
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><html><body>${form}<script>document.forms[0].submit()</script></body></html>`;
      },
    },
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 120,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => {
    const user = users.find((u) => u.sub === id);
    if (!user) return undefined;
    return {
      accountId: user.sub,
      claims: async () => ({
        sub: user.sub,
        name: user.name,
        preferred_username: user.preferred_username,
        email: user.email,
        groups: user.groups || [],
      }),
    };
  },
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile email groups");
    await grant.save();
    return grant;
  },
});

// Auto-approving interaction: log in the hinted user with its configured acr/amr.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const user = byHint(details.params.login_hint);
  const result = {
    login: { accountId: user.sub, acr: user.acr, amr: user.amr },
  };
  await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
});

server.on("request", provider.callback());
process.stdout.write(`READY ${issuer}\n`);
