// /console/ — the overview: groups with their documents, bytes and connections, live
// connections, what waits for the owner, recent activity, version and uptime.
//
// Drawn from GET /console/api/overview or the first `overview` event of the news
// stream, whichever comes first, then redrawn from every later event without a reload.
// The server aggregates the counts: this page never lists documents, so it paints as
// fast with 10,000 documents in a group as with ten.

import { h, section, table, formatBytes, formatNumber, formatDuration, timeEl, consolePath, documentPath, documentIdOf, shortId, badge, countOf } from './dom.js';
import { getJSON } from './api.js';
import { currentOverview, setOverview, subscribe } from './live.js';
import { pageHeading, errorBox } from './ui.js';

export async function overviewPage({ main, signal }) {
  const stats = h('div', { class: 'stats' });
  const server = h('div');
  const groups = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  const activity = h('div');
  main.replaceChildren(
    pageHeading('Overview'),
    stats,
    section('Groups', groups, { id: 'groups' }),
    h('div', { class: 'columns' },
      section('Recent activity', activity, { id: 'activity' }),
      section('Server', server, { id: 'server' })));

  let drawn = false;
  let uptimeBase = null; // [uptimeSeconds, when it was received]
  const draw = (o) => {
    uptimeBase = [Number(o.uptimeSeconds) || 0, performance.now()];
    stats.replaceChildren(...statCards(o));
    groups.replaceChildren(groupsTable(o.groups ?? []));
    activity.replaceChildren(activityList(o.activity ?? []));
    server.replaceChildren(serverFacts(o));
    if (!drawn) {
      drawn = true;
      // For the browser test's paint-time figure: drawn now, on screen at the next frame.
      performance.mark('gm:overview-drawn');
      requestAnimationFrame(() => setTimeout(() => performance.mark('gm:overview-painted'), 0));
    }
  };
  subscribe('overview', draw, signal);
  if (currentOverview()) draw(currentOverview());
  else {
    getJSON('/console/api/overview', { signal })
      .then((o) => {
        if (!drawn) setOverview(o);
      })
      .catch((e) => {
        if (!drawn && !signal.aborted && e.status !== 401) groups.replaceChildren(errorBox('The overview could not be read:', e, () => location.reload()));
      });
  }

  // The uptime counts on between events.
  const tick = setInterval(() => {
    const el = server.querySelector('[data-uptime]');
    if (el && uptimeBase) el.textContent = formatDuration(uptimeBase[0] + (performance.now() - uptimeBase[1]) / 1000);
  }, 1000);
  signal.addEventListener('abort', () => clearInterval(tick), { once: true });
}

function statCards(o) {
  const groups = o.groups ?? [];
  // Right after the server starts, a large group's counts are null until its folder
  // has been walked; the next overview event brings them.
  const counting = groups.some((g) => g.documents === null || g.bytes === null);
  const documents = groups.reduce((n, g) => n + (Number(g.documents) || 0), 0);
  const bytes = groups.reduce((n, g) => n + (Number(g.bytes) || 0), 0);
  const devices = countOf(o.pending?.devices);
  const grants = countOf(o.pending?.grants);
  const card = (label, value, { href, attention, id } = {}) => {
    const body = [h('span', { class: 'stat-value', id }, value), h('span', { class: 'stat-label' }, label)];
    return href
      ? h('a', { class: ['stat', attention && 'stat-attention'], href }, body)
      : h('div', { class: 'stat' }, body);
  };
  return [
    card('live connections', formatNumber(o.connections ?? 0), { id: 'stat-connections' }),
    card(groups.length === 1 ? 'group' : 'groups', formatNumber(groups.length)),
    card('documents', counting ? 'counting…' : formatNumber(documents), { id: 'stat-documents' }),
    card('stored', counting ? 'counting…' : formatBytes(bytes)),
    card(devices === 1 ? 'device waits for approval' : 'devices wait for approval', formatNumber(devices),
      { href: '/console/access#pending-devices', attention: devices > 0, id: 'stat-pending-devices' }),
    card(grants === 1 ? 'grant request waits' : 'grant requests wait', formatNumber(grants),
      { href: '/console/grants#pending-grants', attention: grants > 0, id: 'stat-pending-grants' }),
  ];
}

const COUNTING = () => h('span', { class: 'muted' }, 'counting…');

function groupsTable(groups) {
  const columns = [
    { title: 'Group' },
    { title: 'Documents', class: 'num' },
    { title: 'Size', class: 'num' },
    { title: 'Connections', class: 'num' },
    { title: 'Root document' },
  ];
  const rows = [...groups]
    .sort((a, b) => String(a.group).localeCompare(String(b.group)))
    .map((g) => {
      const rootId = documentIdOf(g.rootDocUrl);
      return [
        h('a', { href: consolePath('groups', g.group) }, g.group),
        g.documents === null ? COUNTING() : formatNumber(g.documents),
        g.bytes === null ? COUNTING() : formatBytes(g.bytes),
        g.connections > 0 ? h('strong', null, formatNumber(g.connections)) : formatNumber(g.connections ?? 0),
        rootId ? h('a', { href: documentPath(rootId, g.group), 'aria-label': `root document of ${g.group}` }, shortId(rootId))
          : g.rootDocUrl ? h('code', null, String(g.rootDocUrl)) : h('span', { class: 'muted' }, 'none'),
      ];
    });
  return table(columns, rows, { label: 'Groups', empty: 'No groups yet: an app creates its group when it first syncs a document.' });
}

function activityList(items) {
  if (items.length === 0) return h('p', { class: 'empty' }, 'Nothing has happened since the server started.');
  return h('ol', { class: 'activity' }, items.map((a) =>
    h('li', null,
      timeEl(a.at),
      badge(String(a.kind ?? 'event'), 'kind'),
      a.group ? h('a', { class: 'activity-group', href: consolePath('groups', a.group) }, a.group) : null,
      h('span', { class: 'activity-text' }, String(a.text ?? '')))));
}

function serverFacts(o) {
  const row = (term, ...desc) => [h('dt', null, term), h('dd', null, ...desc)];
  return h('dl', { class: 'facts' },
    row('Version', h('code', null, String(o.version ?? '—'))),
    row('Up for', h('span', { 'data-uptime': '' }, formatDuration(Number(o.uptimeSeconds)))),
    row('Started', timeEl(o.startedAt)),
    row('Owner', o.owner ? h('code', null, String(o.owner)) : h('span', { class: 'muted' }, 'none (loopback only)')),
    row('Public host', o.publicHost ? h('code', null, String(o.publicHost)) : h('span', { class: 'muted' }, 'none')));
}
