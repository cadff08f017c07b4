// /console/roots — each group's root document: the automerge URL an app gets back at
// login (`rootDocUrl`), from which it finds the rest of its documents. Set one for a
// group that has none, or replace one (a new device of the app then starts from it).

import { h, section, table, documentPath, documentIdOf } from './dom.js';
import { getJSON, put } from './api.js';
import { subscribe } from './live.js';
import { pageHeading, errorBox, toast } from './ui.js';

export async function rootsPage({ main, signal }) {
  const list = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  const groups = h('datalist', { id: 'root-groups' });
  const groupInput = h('input', { id: 'root-group', name: 'group', required: true, list: 'root-groups', autocomplete: 'off', spellcheck: 'false', placeholder: 'xyz.groundmist.library' });
  const urlInput = h('input', { id: 'root-url', name: 'rootDocUrl', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'automerge:…', 'aria-describedby': 'root-url-help root-error' });
  const error = h('p', { id: 'root-error', class: 'field-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Set root document');
  const form = h('form', { class: 'form', id: 'root-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'root-group' }, 'Group'), groupInput, groups),
    h('div', { class: 'field field-wide' }, h('label', { for: 'root-url' }, 'Root document URL'), urlInput,
      h('p', { id: 'root-url-help', class: 'help' }, 'An automerge URL, e.g. automerge:2J8rM…: copy it from the app or a document page.')),
    error,
    h('div', { class: 'form-actions' }, submit));

  main.replaceChildren(
    pageHeading('Root documents', h('p', { class: 'subtitle' }, 'An app gets its group\'s root document at login and finds the rest of its documents from it.')),
    section('Groups', list, { id: 'roots' }),
    section('Set or replace a root document', form, { id: 'set-root' }));

  let roots = [];
  const refresh = async () => {
    try {
      roots = (await getJSON('/console/api/roots', { signal })).roots ?? [];
    } catch (e) {
      if (!signal.aborted && e.status !== 401) list.replaceChildren(errorBox('The root documents could not be read:', e, refresh));
      return;
    }
    groups.replaceChildren(...roots.map((r) => h('option', { value: r.group })));
    const columns = [{ title: 'Group' }, { title: 'Root document' }, { title: 'Action', class: 'actions-cell' }];
    list.replaceChildren(table(columns, roots.map((r) => {
      const id = documentIdOf(r.rootDocUrl);
      return {
        dataset: { group: String(r.group) },
        cells: [
          h('span', { class: 'group-name' }, String(r.group)),
          id ? h('a', { href: documentPath(id, r.group), class: 'root-url' }, h('code', null, String(r.rootDocUrl)))
            : r.rootDocUrl ? h('code', { class: 'root-url' }, String(r.rootDocUrl)) : h('span', { class: 'muted' }, 'none'),
          h('button', {
            type: 'button',
            class: 'btn btn-small',
            'aria-label': `${r.rootDocUrl ? 'Replace' : 'Set'} the root document of ${r.group}`,
            onclick: () => {
              groupInput.value = r.group;
              urlInput.value = '';
              urlInput.focus();
            },
          }, r.rootDocUrl ? 'Replace' : 'Set'),
        ],
      };
    }), { label: 'Root documents', empty: 'No groups yet.' }));
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const group = groupInput.value.trim();
    const url = urlInput.value.trim();
    if (!/^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)+$/.test(group)) {
      error.textContent = 'The group is a lexicon NSID group such as xyz.groundmist.library.';
      groupInput.focus();
      return;
    }
    if (!documentIdOf(url)) {
      error.textContent = 'The root document is an automerge URL: "automerge:" and the document id.';
      urlInput.focus();
      return;
    }
    submit.disabled = true;
    try {
      await put(`/console/api/roots/${encodeURIComponent(group)}`, { rootDocUrl: url });
      toast(`The root document of ${group} is now ${url}.`);
      urlInput.value = '';
      await refresh();
    } catch (err) {
      error.textContent = `Not set: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });

  subscribe('access', () => refresh(), signal);
  await refresh();
}
