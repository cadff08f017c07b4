// Issue 15, "Sign in with atproto" on the owner's console (docs/console.md): the real
// `groundmist-sync serve` as an atproto OAuth client of the reference PDS's own OAuth
// provider (@atproto/dev-env, PLC + PDS on loopback, lib/atproto.mjs), driven in a real
// browser (Debian's chromium, npm puppeteer-core): the owner signs in on the PDS's pages
// and lands on /console/ with a console session; someone else's account is refused; a
// callback with an unknown, used or other-browser state is refused; without an owner the
// start says what to do instead.
//
// The server is configured as the owner would: ATPROTO_DID and PLC_URL in the .env of
// its working folder (the data folder here); no public host, so the loopback client
// form is used (client_id http://localhost?redirect_uri=http://127.0.0.1:<port>/…).
// GM_CHROMIUM names another browser than /usr/bin/chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { scope } from './lib/scope.mjs';
import { SERVER_KIND } from './lib/server.mjs';
import { INTEROP_DIR, importFrom, tempDir, withTimeout } from './lib/util.mjs';
import { ATPROTO_DIR, startAtprotoNetwork, runCli } from './lib/atproto.mjs';

const CHROMIUM = process.env.GM_CHROMIUM || '/usr/bin/chromium';
const skip = SERVER_KIND !== 'cpp' ? 'the JS reference server has no console'
  : !fs.existsSync(CHROMIUM) ? `no browser at ${CHROMIUM} (scripts/install-deps.sh installs chromium)`
  : !fs.existsSync(path.join(INTEROP_DIR, 'node_modules', 'puppeteer-core')) ? 'puppeteer-core is not installed (scripts/install-npm.sh)'
  : !fs.existsSync(path.join(ATPROTO_DIR, 'node_modules')) ? 'the atproto network is not installed (scripts/install-atproto.sh)'
  : false;

let atp; // the PLC + PDS, accounts alice (the owner) and bob
let browser;

before(async () => {
  if (skip) return;
  const puppeteer = (await importFrom(INTEROP_DIR, 'puppeteer-core')).default;
  [atp, browser] = await Promise.all([
    startAtprotoNetwork(),
    puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // --no-sandbox: the tests run as root in CI containers, where Chromium's sandbox
      // cannot start. Only loopback pages (our server, the test PDS) are opened.
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    }),
  ]);
}, { timeout: 90000 });

after(async () => {
  await browser?.close().catch(() => {});
  await atp?.close();
});

// --- helpers ----------------------------------------------------------------------------

// A server whose .env names `owner` (or none) and the test PLC, as `setup` would write it.
async function server(env, { owner = atp.alice.did, args = [] } = {}) {
  const data = tempDir('oauth');
  const lines = [`PLC_URL=${atp.plcUrl}`];
  if (owner) lines.push(`ATPROTO_DID=${owner}`);
  fs.writeFileSync(path.join(data, '.env'), `${lines.join('\n')}\n`);
  const s = await env.server({ data, args });
  return Object.assign(s, { origin: `http://127.0.0.1:${s.port}` });
}

// A browser profile of its own (no cookies from another test, at our server or the PDS).
async function freshPage(t) {
  const context = await browser.createBrowserContext();
  t.after(() => context.close().catch(() => {}));
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  return page;
}

// GET with the redirect not followed: { status, location, setCookies, headers }.
async function getManual(url, headers = {}) {
  const r = await fetch(url, { redirect: 'manual', headers });
  await r.arrayBuffer();
  return { status: r.status, location: r.headers.get('location'), setCookies: r.headers.getSetCookie(), headers: r.headers };
}

// The message a failed sign-in carries to the login page (/console/login#error=…).
function loginError(location) {
  const m = /^\/console\/login#error=(.*)$/.exec(location ?? '');
  assert.ok(m, `a redirect to /console/login#error=…, not ${location}`);
  return decodeURIComponent(m[1]);
}

// The console's session cookie among Set-Cookie values, if any.
const consoleCookie = (setCookies) => setCookies.find((c) => c.startsWith('gm_console=') && !c.startsWith('gm_console=;'));

async function consoleSessions(s) {
  const r = await runCli(['sessions', 'list', '--json', '--data', s.data]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).filter((x) => x.kind === 'console');
}

/**
 * Drives the PDS's sign-in pages in `page` from /console/oauth/start: signs in as
 * `account` and authorizes. The PDS pre-fills the owner's handle from login_hint and
 * locks the field; the provider does not hold the sign-in to that hint, so another
 * account is signed in by sending its handle in the page's sign-in call, and consenting
 * for it with the page's own consent call (what a person editing the page could do: the
 * page itself waits for the hinted account). The callback request is seen, and stopped before it
 * reaches the server if `holdCallback`. Resolves { callbackUrl }; the page is then
 * wherever the server sent it.
 */
async function signIn(page, s, account, { holdCallback = false } = {}) {
  let callbackUrl = null;
  let signInHeaders = null;
  const callbackPrefix = `${s.origin}/console/oauth/callback`;
  const otherAccount = account.did !== atp.alice.did;
  if (holdCallback || otherAccount) {
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      if (req.isInterceptResolutionHandled()) return;
      if (req.url().startsWith(callbackPrefix)) {
        callbackUrl = req.url();
        (holdCallback ? req.abort() : req.continue()).catch(() => {});
      } else if (otherAccount && req.method() === 'POST' && req.url().endsWith('/@atproto/oauth-provider/~api/sign-in')) {
        const body = JSON.parse(req.postData());
        signInHeaders = req.headers();
        req.continue({ postData: JSON.stringify({ ...body, username: account.handle }) }).catch(() => {});
      } else {
        req.continue().catch(() => {});
      }
    });
  } else {
    page.on('request', (req) => {
      if (req.url().startsWith(callbackPrefix)) callbackUrl = req.url();
    });
  }
  await page.goto(`${s.origin}/console/oauth/start`);
  assert.ok(page.url().startsWith(`${atp.pdsUrl}/oauth/authorize?`), `on the PDS's page, not ${page.url()}`);
  const username = await page.waitForSelector('input[name=username]');
  assert.equal(await username.evaluate((e) => e.value), atp.alice.handle, 'the PDS pre-fills the owner (login_hint)');
  await page.type('input[name=password]', account.password);
  await page.click('button[type=submit]');
  if (otherAccount) {
    // The page keeps waiting for the hinted account; its next call, the consent, is made
    // as the page would make it (same headers), for the account that did sign in.
    const signedIn = await page.waitForResponse((r) => r.url().endsWith('/~api/sign-in'));
    assert.equal(signedIn.status(), 200);
    const { account: who, ephemeralToken } = await signedIn.json();
    assert.equal(who.did, account.did);
    const url = await page.evaluate(async (headers, did) => {
      const r = await fetch('/@atproto/oauth-provider/~api/consent', {
        method: 'POST', mode: 'same-origin', headers, body: JSON.stringify({ did, scope: 'atproto' }) });
      if (!r.ok) throw new Error(`consent: ${r.status} ${await r.text()}`);
      return (await r.json()).url;
    }, { ...Object.fromEntries(Object.entries(signInHeaders).filter(([k]) => !['content-length', 'cookie', 'host', 'origin', 'referer'].includes(k))),
      authorization: `Bearer ${ephemeralToken}` }, account.did);
    // The provider's redirect page (its script) sends the browser on to redirect_uri
    // with the same query; do that step directly.
    const answer = new URL(url).searchParams;
    const back = new URL(answer.get('redirect_uri'));
    for (const k of ['iss', 'state', 'code', 'error', 'error_description']) if (answer.has(k)) back.searchParams.set(k, answer.get(k));
    await page.goto(back.href);
    await page.waitForFunction((o) => location.href.startsWith(`${o}/console/`), { timeout: 20000 }, s.origin);
    return { callbackUrl };
  }
  const authorize = await page.waitForSelector('xpath/.//button[normalize-space()="Authorize"]');
  if (holdCallback) {
    await authorize.click();
    await withTimeout((async () => {
      while (!callbackUrl) await new Promise((r) => setTimeout(r, 50));
    })(), 20000, 'the callback request');
  } else {
    await authorize.click();
    // The callback answers 303 to /console/ or /console/login#error=…; wait for either.
    await page.waitForFunction((o) => location.href.startsWith(`${o}/console/`), { timeout: 20000 }, s.origin);
  }
  return { callbackUrl };
}

// --- the tests --------------------------------------------------------------------------

// The reason the login page shows for a failed sign-in: it takes it from #error= in the
// address, shows it as text, and clears the address.
async function shownError(page) {
  await page.waitForSelector('#oauth-error', { timeout: 5000 });
  const text = await page.$eval('#oauth-error', (e) => e.textContent);
  assert.equal(new URL(page.url()).hash, '', 'the error leaves the address');
  return text;
}

test('the owner signs in with atproto in a browser and lands on the console, logged in', { skip, timeout: 60000 }, async (t) => {
  const env = scope(t);
  const s = await server(env);
  const page = await freshPage(t);
  const t0 = performance.now();
  const { callbackUrl } = await signIn(page, s, atp.alice);
  t.diagnostic(`sign-in through the PDS's pages took ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(page.url(), `${s.origin}/console/`);
  const cb = new URL(callbackUrl);
  assert.equal(cb.searchParams.get('iss'), atp.pdsUrl, 'the PDS names itself as the issuer');

  // The browser's cookie opens the console's API: a session for the owner.
  const session = await page.evaluate(async () => {
    const r = await fetch('/console/api/session');
    return { status: r.status, json: await r.json() };
  });
  assert.equal(session.status, 200, JSON.stringify(session.json));
  assert.equal(session.json.owner, atp.alice.did);
  const cookies = await page.cookies(`${s.origin}/console/oauth/callback`);
  const cookie = cookies.find((c) => c.name === 'gm_console');
  assert.ok(cookie, 'a console cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(!cookies.some((c) => c.name === 'gm_oauth'), 'the sign-in cookie is cleared');

  // The command line lists it like any console session.
  const listed = await consoleSessions(s);
  assert.deepEqual(listed.map((x) => x.id), [session.json.sessionId]);
  assert.equal(listed[0].subject, atp.alice.did);

  // The same answer once more: its state was used.
  const again = await getManual(callbackUrl, { cookie: `gm_oauth=${'x'.repeat(43)}` });
  assert.equal(again.status, 303);
  assert.match(loginError(again.location), /unknown, already used or expired/);
  assert.equal(consoleCookie(again.setCookies), undefined);
  assert.equal((await consoleSessions(s)).length, 1);
});

test("someone else's account (not the owner) signing in is refused, with no session", { skip, timeout: 60000 }, async (t) => {
  const env = scope(t);
  const s = await server(env);
  const page = await freshPage(t);
  const responses = [];
  page.on('response', (r) => {
    if (r.url().startsWith(`${s.origin}/console/oauth/callback`)) responses.push(r);
  });
  await signIn(page, s, atp.bob);
  const url = new URL(page.url());
  assert.equal(url.pathname, '/console/login');
  const message = await shownError(page);
  assert.match(message, new RegExp(`${atp.bob.did} signed in, but this server belongs to ${atp.alice.did}`));
  assert.equal(responses.length, 1);
  assert.equal(consoleCookie(responses[0].headers()['set-cookie']?.split('\n') ?? []), undefined);
  assert.ok(!(await page.cookies(`${s.origin}/console/`)).some((c) => c.name === 'gm_console'), 'no console cookie');
  const session = await page.evaluate(async () => (await fetch('/console/api/session')).status);
  assert.equal(session, 401);
  assert.deepEqual(await consoleSessions(s), []);
});

test('a callback with an unknown state, or from another browser, is refused; its state is then spent', { skip, timeout: 60000 }, async (t) => {
  const env = scope(t);
  const s = await server(env);

  // Made up: never started.
  const made = await getManual(`${s.origin}/console/oauth/callback?state=${'a'.repeat(43)}&code=cod-1&iss=${encodeURIComponent(atp.pdsUrl)}`);
  assert.equal(made.status, 303);
  assert.match(loginError(made.location), /unknown, already used or expired/);
  assert.equal(consoleCookie(made.setCookies), undefined);
  const none = await getManual(`${s.origin}/console/oauth/callback?code=cod-1`);
  assert.match(loginError(none.location), /no state/);

  // A real answer from the PDS for the owner, held back from the browser and sent from
  // elsewhere (without the browser's sign-in cookie): refused, and spent.
  const page = await freshPage(t);
  const { callbackUrl } = await signIn(page, s, atp.alice, { holdCallback: true });
  const elsewhere = await getManual(callbackUrl);
  assert.equal(elsewhere.status, 303);
  assert.match(loginError(elsewhere.location), /started in another browser/);
  assert.equal(consoleCookie(elsewhere.setCookies), undefined);
  // Now the right browser brings it: too late.
  await page.setRequestInterception(false);
  await page.goto(callbackUrl);
  const url = new URL(page.url());
  assert.equal(url.pathname, '/console/login');
  assert.match(await shownError(page), /unknown, already used or expired/);
  assert.deepEqual(await consoleSessions(s), []);
});

test('the answer must name the issuer the sign-in went to', { skip, timeout: 60000 }, async (t) => {
  const env = scope(t);
  const s = await server(env);
  const page = await freshPage(t);
  const { callbackUrl } = await signIn(page, s, atp.alice, { holdCallback: true });
  const forged = new URL(callbackUrl);
  forged.searchParams.set('iss', 'https://evil.example.com');
  await page.setRequestInterception(false);
  await page.goto(forged.href);
  const url = new URL(page.url());
  assert.equal(url.pathname, '/console/login');
  assert.match(await shownError(page), /names issuer "https:\/\/evil\.example\.com", not the owner's authorization server/);
  assert.deepEqual(await consoleSessions(s), []);
});

test('the PDS refusing (Deny access) comes back as a clear error', { skip, timeout: 60000 }, async (t) => {
  const env = scope(t);
  const s = await server(env);
  const page = await freshPage(t);
  await page.goto(`${s.origin}/console/oauth/start`);
  await page.type('input[name=password]', atp.alice.password);
  await page.click('button[type=submit]');
  const deny = await page.waitForSelector('xpath/.//button[normalize-space()="Deny access"]');
  await deny.click();
  await page.waitForFunction((o) => location.href.startsWith(`${o}/console/login`), { timeout: 20000 }, s.origin);
  const message = await shownError(page);
  assert.match(message, /authorization server ended the sign-in: access_denied/);
  assert.deepEqual(await consoleSessions(s), []);
});

test('without an owner DID, the start says what to do instead; the link log-in still works', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const s = await server(env, { owner: null });
  const r = await getManual(`${s.origin}/console/oauth/start`);
  assert.equal(r.status, 303);
  assert.match(loginError(r.location), /needs the owner's DID \(ATPROTO_DID or --owner\).*console-link/);
  assert.equal(r.headers.get('content-security-policy')?.includes("default-src 'none'"), true);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const link = await runCli(['console-link', '--data', s.data, '--url', s.origin]);
  assert.equal(link.code, 0, link.stderr);
  const code = /#code=([A-Za-z0-9_-]+)/.exec(link.stdout)[1];
  const login = await fetch(`${s.origin}/console/api/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  assert.equal(login.status, 200);
});

// A request with a Host header fetch() will not send.
function getWithHost(port, urlPath, host) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

test('which client: loopback form on 127.0.0.1, localhost sent there first, the deployed form at the public host, nothing elsewhere', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const publicHost = 'sync.groundmist.test';
  const s = await server(env, { args: ['--public-host', publicHost] });

  // localhost → the same start on 127.0.0.1 (the redirect URI's host, where cookies go).
  const local = await getWithHost(s.port, '/console/oauth/start', `localhost:${s.port}`);
  assert.equal(local.status, 303);
  assert.equal(local.location, `http://127.0.0.1:${s.port}/console/oauth/start`);

  // 127.0.0.1 → the PDS, with the loopback client id.
  const loop = await getManual(`${s.origin}/console/oauth/start`);
  assert.equal(loop.status, 303);
  const to = new URL(loop.location);
  assert.equal(to.origin + to.pathname, `${atp.pdsUrl}/oauth/authorize`);
  assert.equal(to.searchParams.get('client_id'),
    `http://localhost?redirect_uri=${encodeURIComponent(`http://127.0.0.1:${s.port}/console/oauth/callback`)}&scope=atproto`);
  assert.match(to.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);
  const bind = loop.setCookies.find((c) => c.startsWith('gm_oauth='));
  assert.match(bind, /HttpOnly/);
  assert.match(bind, /SameSite=Lax/);
  assert.match(bind, /Path=\/console\/oauth/);

  // The public host → the deployed client id, which the PDS fetches from
  // https://sync.groundmist.test/… — not reachable here, so the PDS refuses the request,
  // and says which client it could not load.
  const deployed = await getWithHost(s.port, '/console/oauth/start', publicHost);
  assert.equal(deployed.status, 303);
  const why = loginError(deployed.location);
  assert.match(why, /refused to start the sign-in/);
  assert.match(why, /for client https:\/\/sync\.groundmist\.test\/console\/oauth\/client-metadata\.json/);

  // Any other host: refused before any network call.
  const other = await getWithHost(s.port, '/console/oauth/start', 'evil.example.com');
  assert.match(loginError(other.location), /works only at the server's public host \(https:\/\/sync\.groundmist\.test\/console\/\)/);

  // The client metadata document of the deployed form.
  const meta = await fetch(`${s.origin}/console/oauth/client-metadata.json`);
  assert.equal(meta.status, 200);
  assert.match(meta.headers.get('content-security-policy'), /default-src 'none'/);
  assert.deepEqual(await meta.json(), {
    client_id: `https://${publicHost}/console/oauth/client-metadata.json`,
    client_name: 'Groundmist Sync console',
    client_uri: `https://${publicHost}/console/`,
    application_type: 'web',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`https://${publicHost}/console/oauth/callback`],
    scope: 'atproto',
    token_endpoint_auth_method: 'none',
    dpop_bound_access_tokens: true,
  });
  const bare = await server(env);
  assert.equal((await fetch(`${bare.origin}/console/oauth/client-metadata.json`)).status, 404);
});
