// The console's entry point. Every page path answers the same index.html; this module
// draws the page the path names (docs/console.md, Pages) and moves between pages with
// history.pushState, keeping one stream of server news open for the whole visit.

import { h, fill, refreshRelativeTimes, countOf } from './dom.js';
import { session, post, LOGIN_PATH } from './api.js';
import { startLive, stopLive, subscribe } from './live.js';
import { errorBox, toast } from './ui.js';
import { overviewPage } from './page-overview.js';

// The overview is the page most visits start on, so it is loaded with this module;
// the other pages are loaded when first shown (and, once a page has been drawn, in
// the background), which keeps the overview's first paint to a handful of requests.
// (A page left while its module was loading is not drawn.)
const lazy = (load, name) => async (ctx) => {
  const module = await load();
  if (!ctx.signal.aborted) await module[name](ctx);
};
const groupPage = lazy(() => import('./page-group.js'), 'groupPage');
const documentPage = lazy(() => import('./page-document.js'), 'documentPage');
const accessPage = lazy(() => import('./page-access.js'), 'accessPage');
const grantsPage = lazy(() => import('./page-grants.js'), 'grantsPage');
const rootsPage = lazy(() => import('./page-roots.js'), 'rootsPage');
const loginPage = lazy(() => import('./page-login.js'), 'loginPage');
const LATER = ['./page-group.js', './page-document.js', './page-access.js', './page-grants.js', './page-roots.js'];

const main = document.getElementById('main');

// [pattern on the path, nav entry to mark, page]; a group or document id is one
// URL-encoded path segment.
const ROUTES = [
  [/^\/console\/?$/, 'overview', overviewPage],
  [/^\/console\/groups\/([^/]+)\/?$/, 'overview', groupPage],
  [/^\/console\/documents\/([^/]+)\/?$/, 'overview', documentPage],
  [/^\/console\/access\/?$/, 'access', accessPage],
  [/^\/console\/grants\/?$/, 'grants', grantsPage],
  [/^\/console\/roots\/?$/, 'roots', rootsPage],
  [/^\/console\/login\/?$/, null, loginPage],
];

function route(pathname) {
  for (const [pattern, nav, page] of ROUTES) {
    const m = pattern.exec(pathname);
    if (m) {
      let params;
      try {
        params = m.slice(1).map(decodeURIComponent);
      } catch {
        break; // a malformed escape: not a page
      }
      return { nav, page, params };
    }
  }
  return { nav: null, page: notFoundPage, params: [] };
}

function notFoundPage({ main }) {
  document.title = 'Not found · Groundmist Sync';
  main.replaceChildren(
    h('h1', { tabindex: '-1' }, 'No such page'),
    h('p', null, 'The console has no page at this address. ', h('a', { href: '/console/' }, 'Go to the overview'), '.'));
}

let pageController = null;
let shown = null; // the path and query of the page drawn
let firstPage = true;
let warmed = false;

// Draws the page of the current location. The previous page's fetches, streams and
// subscriptions end with its AbortController.
async function show() {
  pageController?.abort();
  pageController = new AbortController();
  const { signal } = pageController;
  const url = new URL(location.href);
  shown = url.pathname + url.search;
  const { nav, page, params } = route(url.pathname);
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  const focusHeading = !firstPage;
  firstPage = false;
  try {
    await page({ main, params, query: url.searchParams, signal, navigate });
    if (!warmed && page !== loginPage) {
      warmed = true;
      // The other pages' modules, fetched while nothing else happens.
      setTimeout(() => LATER.forEach((m) => import(m).catch(() => {})), 500);
    }
    // After a navigation, move focus to the new page's heading so keyboard and screen
    // reader users start there (not on the first load: the browser does that).
    if (focusHeading && !signal.aborted) main.querySelector('h1')?.focus({ preventScroll: true });
    // A link to a part of a page (/console/access#pending-devices) scrolls to it.
    // A malformed #part (a bad escape) is no anchor: ignored, not an error page.
    if (url.hash.length > 1 && !signal.aborted) {
      let anchor = null;
      try {
        anchor = decodeURIComponent(url.hash.slice(1));
      } catch {
        // not an anchor
      }
      if (anchor) document.getElementById(anchor)?.scrollIntoView();
    }
  } catch (e) {
    if (signal.aborted || e?.name === 'AbortError') return;
    if (e?.status === 401) return; // on the way to the login page
    main.replaceChildren(h('h1', { tabindex: '-1' }, 'Something went wrong'), errorBox('This page could not be drawn:', e, show));
  }
}

// Moves to another console page without reloading (the stream of news stays open).
export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  window.scrollTo(0, 0);
  show();
}

// Links to console pages are followed in the page; downloads, new tabs, modified
// clicks and everything outside /console/ are left to the browser.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest?.('a[href]');
  if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
  if (!a.pathname.startsWith('/console/') && a.pathname !== '/console') return;
  if (a.pathname.startsWith('/console/api/') || a.pathname.startsWith('/console/assets/')) return;
  // Sign in with atproto is the server's, a plain navigation (it leaves for the PDS).
  if (a.pathname.startsWith('/console/oauth/')) return;
  if (a.pathname === LOGIN_PATH) return;
  if (a.pathname === location.pathname && a.search === location.search && a.hash) return; // in-page anchor
  e.preventDefault();
  navigate(a.href);
});

// Back and forward: a new page, unless only the #part changed (a skip link, an anchor).
// But a login link opened over the login page changes only the #part, and must log in;
// so must a failed sign-in's message (#error=) be shown.
window.addEventListener('popstate', () => {
  const newLink = location.pathname === LOGIN_PATH && /(^#|&)(code|error)=/.test(location.hash);
  if (location.pathname + location.search !== shown || newLink) show();
});

// A page the browser keeps in its back/forward cache stays alive, and so would its
// event streams: each holds one of the six connections a browser opens to a server,
// and after a few pages the new page's requests would wait behind them for ever. So
// streams end when the page is put away and start again if it comes back.
window.addEventListener('pagehide', () => {
  pageController?.abort();
  stopLive();
});
window.addEventListener('pageshow', (e) => {
  if (!e.persisted) return;
  if (route(location.pathname).page !== loginPage) startLive();
  show();
});

// The bar's pieces that need a logged-in visit: nav links with pending counts, the
// live dot, the log-out button, the footer.
function startChrome() {
  document.getElementById('nav-links').hidden = false;
  const logout = document.getElementById('logout');
  logout.hidden = false;
  logout.addEventListener('click', async () => {
    logout.disabled = true;
    try {
      await post('/console/api/logout');
      location.assign(`${LOGIN_PATH}?logged-out`);
    } catch (e) {
      logout.disabled = false;
      toast(`Log out failed: ${e.message}`, 'error');
    }
  });

  const dot = document.getElementById('live-dot');
  dot.hidden = false;
  subscribe('state', (s) => {
    const words = s === 'live' ? 'live: updates arrive as they happen' : s === 'failed' ? 'not live' : 'reconnecting';
    dot.dataset.state = s;
    dot.title = words;
    dot.setAttribute('aria-label', words);
  });

  // Pending devices and grants as counts on the nav links.
  const setCount = (id, n, what) => {
    const el = document.getElementById(id);
    const link = el.closest('a');
    el.hidden = !(n > 0);
    el.textContent = n > 0 ? String(n) : '';
    el.title = n > 0 ? `${n} ${what(n)} waiting for you` : '';
    // Read out as "Access, 1 device waiting for you", not "Access 1".
    if (n > 0) link.setAttribute('aria-label', `${link.firstChild.textContent.trim()}, ${el.title}`);
    else link.removeAttribute('aria-label');
  };
  subscribe('overview', (o) => {
    setCount('nav-devices', countOf(o.pending?.devices), (n) => (n === 1 ? 'device' : 'devices'));
    setCount('nav-grants', countOf(o.pending?.grants), (n) => (n === 1 ? 'grant request' : 'grant requests'));
  });
  startLive();

  const footer = document.getElementById('footer');
  session()
    .then((s) => {
      fill(footer,
        h('span', null, `Groundmist Sync ${s.version ?? ''}`),
        s.owner ? h('span', null, 'Owner ', h('code', null, s.owner)) : h('span', null, 'No owner configured (loopback only)'),
        s.publicHost ? h('span', null, 'Public host ', h('code', null, s.publicHost)) : null);
    })
    .catch(() => {
      // a 401 is on its way to the login page; anything else shows on the page itself
    });
}

if (route(location.pathname).page !== loginPage) startChrome();
// Relative times ("3 minutes ago") are kept true without redrawing pages.
setInterval(() => refreshRelativeTimes(main), 15000);
show();
