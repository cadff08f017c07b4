// /console/login — the link log-in. `groundmist-sync console-link` prints
// /console/login#code=<code>: the code rides in the fragment, which the browser never
// sends to a server. This page takes it out of the address at once (so it stays in
// neither the history nor a bookmark), trades it for the console cookie with
// POST /console/api/login and goes to the overview. It never puts the code in the page.

import { h } from './dom.js';
import { login, session } from './api.js';

const HOW = () => h('p', null, 'On the server\'s machine, run ',
  h('code', null, 'groundmist-sync console-link'), ' (with the same ', h('code', null, '--data'),
  ' as ', h('code', null, 'serve'), ') and open the link it prints. A link works once, within 10 minutes.');

export async function loginPage({ main }) {
  document.title = 'Log in · Groundmist Sync';
  const box = h('div', { class: 'login-box', role: 'status', 'aria-live': 'polite' });
  main.replaceChildren(h('div', { class: 'login' }, h('h1', { tabindex: '-1' }, 'Groundmist Sync console'), box));

  const code = new URLSearchParams(location.hash.slice(1)).get('code');
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
    box.replaceChildren(h('p', null, 'To log in you need a login link.'), HOW());
  }
}
