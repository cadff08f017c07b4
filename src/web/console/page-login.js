// /console/login — the owner logs in with a link or with their atproto account.
//
// The link: `groundmist-sync console-link` prints /console/login#code=<code>; the code
// rides in the fragment, which the browser never sends to a server. This page trades it
// for the console cookie with POST /console/api/login and goes to the overview. It takes
// the code out of the address at once (replaceState), so it is not in the address bar,
// this tab's back/forward list or a bookmark made later; the browser's own history
// (Chromium's History database) has already recorded the address as opened, code and
// all — what makes that harmless is that a code works once, within 10 minutes, and is
// used here at once. It never puts the code in the page.
//
// "Sign in with atproto" is a plain link to /console/oauth/start (the server's OAuth
// client, docs/console.md): shown always, since the server itself answers clearly when
// no owner is configured. A failed sign-in comes back as /console/login#error=<message>:
// shown as text (it is only ever text, never markup), then taken out of the address.

import { h } from './dom.js';
import { login, session } from './api.js';

const HOW = () => h('p', null, 'On the server\'s machine, run ',
  h('code', null, 'groundmist-sync console-link'), ' (with the same ', h('code', null, '--data'),
  ' as ', h('code', null, 'serve'), ') and open the link it prints. A link works once, within 10 minutes.');

// A parameter of the fragment (#code=…&error=…), percent-decoded as the server encoded
// it; null if absent. A malformed escape leaves the text as it came.
function fragmentParam(name) {
  for (const part of location.hash.slice(1).split('&')) {
    const eq = part.indexOf('=');
    if ((eq < 0 ? part : part.slice(0, eq)) !== name) continue;
    const raw = eq < 0 ? '' : part.slice(eq + 1);
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return null;
}

export async function loginPage({ main }) {
  document.title = 'Log in · Groundmist Sync';
  const box = h('div', { class: 'login-box', role: 'status', 'aria-live': 'polite' });
  const oauth = h('div', { class: 'login-oauth' },
    h('a', { class: 'btn btn-primary', id: 'oauth-start', href: '/console/oauth/start' }, 'Sign in with atproto'),
    h('p', { class: 'small muted' }, 'With the owner\'s atproto account, on its own server\'s sign-in page.'));
  main.replaceChildren(h('div', { class: 'login' }, h('h1', { tabindex: '-1' }, 'Groundmist Sync console'), oauth, box));

  const failed = fragmentParam('error');
  const code = fragmentParam('code');
  if (failed !== null) {
    history.replaceState(null, '', location.pathname + location.search);
    oauth.prepend(h('div', { class: 'notice notice-error', id: 'oauth-error', role: 'alert' },
      h('p', null, h('strong', null, 'Sign in with atproto did not work. '), failed.slice(0, 1000))));
  }

  if (code !== null) {
    history.replaceState(null, '', location.pathname);
    box.replaceChildren(h('p', { class: 'loading' }, 'Logging in…'));
    try {
      await login(code.trim().slice(0, 256));
      box.replaceChildren(h('p', null, 'Logged in. Opening the console…'));
      location.replace('/console/');
    } catch (e) {
      box.setAttribute('role', 'alert');
      box.replaceChildren(
        h('div', { class: 'notice notice-error', id: 'login-error' },
          h('p', null, h('strong', null, 'This login link does not work. '),
            e.status === 401 || e.status === 400
              ? 'It has been used already, it has expired, or it is not a link this server made.'
              : `The server answered: ${e.message}`)),
        HOW());
    }
    return;
  }

  if (new URLSearchParams(location.search).has('logged-out')) {
    box.replaceChildren(h('p', { class: 'notice notice-ok' }, 'You are logged out.'), HOW());
    return;
  }
  // Already logged in? Then there is nothing to do here.
  try {
    await session({ on401: null });
    box.replaceChildren(h('p', null, 'You are logged in. ', h('a', { href: '/console/' }, 'Open the console'), '.'));
  } catch {
    box.replaceChildren(h('p', null, 'Or log in with a login link.'), HOW());
  }
}
