// Pieces of page shared by several pages: the page heading, notices, action buttons,
// the "live" indicator.

import { h } from './dom.js';

// The page's h1 (focused after a navigation, so a screen reader announces the new
// page) and the document title.
export function pageHeading(title, ...extra) {
  document.title = `${title} · Groundmist Sync`;
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, title), extra);
}

let toastTimer = null;
// A short message in the polite live region at the bottom of the page.
export function toast(message, kind = 'ok') {
  const el = document.getElementById('toast');
  el.className = `toast toast-${kind} toast-shown`;
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('toast-shown'), 6000);
}

// A failure shown where the content would be, with a way to try again.
export function errorBox(what, error, retry) {
  return h('div', { class: 'notice notice-error', role: 'alert' },
    h('p', null, h('strong', null, what), ' ', error?.message ?? String(error)),
    retry ? h('button', { type: 'button', class: 'btn', onclick: retry }, 'Try again') : null);
}

// Buttons waiting for their confirming press, by name, until when (ms): a live redraw
// of the table replaces the button, and the owner's first press must not be lost.
const armedUntil = new Map();
const ARMED_MS = 5000;

/**
 * A button that runs `action` (async), disabled while it runs; its outcome is told in
 * the toast. With `confirm`, the first press only asks ("Confirm revoke?") and a second
 * press within 5 s does it: revoking cuts an app off and approving lets one in, so each
 * takes two deliberate presses on the same button (a live redraw may put another row
 * under the pointer between them), without a modal dialog. `name` (data-action) identifies the button across redraws.
 */
export function actionButton(label, action, { kind = '', confirm = null, done, describedBy, name } = {}) {
  let armed = false;
  let timer = null;
  const btn = h('button', { type: 'button', class: ['btn', kind && `btn-${kind}`], 'aria-describedby': describedBy, 'data-action': name }, label);
  const disarm = () => {
    armed = false;
    if (name) armedUntil.delete(name);
    btn.textContent = label;
    btn.classList.remove('btn-armed');
  };
  const arm = (ms) => {
    armed = true;
    btn.textContent = confirm;
    btn.classList.add('btn-armed');
    clearTimeout(timer);
    timer = setTimeout(disarm, ms);
  };
  const left = name ? (armedUntil.get(name) ?? 0) - Date.now() : 0;
  if (confirm && left > 0) arm(left);
  btn.addEventListener('click', async () => {
    if (confirm && !armed) {
      if (name) armedUntil.set(name, Date.now() + ARMED_MS);
      arm(ARMED_MS);
      return;
    }
    clearTimeout(timer);
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    try {
      await action();
      if (done) toast(done);
    } catch (e) {
      toast(`${label} failed: ${e.message}`, 'error');
    } finally {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      disarm();
    }
  });
  return btn;
}

// Replaces `container`'s content with `nodes` (a live redraw), keeping the keyboard
// focus on the same button or field when the new content has it again.
export function redraw(container, ...nodes) {
  const active = document.activeElement;
  const key = container.contains(active) ? active.dataset.action ?? (active.id || null) : null;
  container.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
  if (!key) return;
  const again = container.querySelector(`[data-action="${CSS.escape(key)}"]`) ?? document.getElementById(key);
  again?.focus({ preventScroll: true });
}

// The state of a page's stream in words, beside the page heading.
export function liveIndicator() {
  const el = h('span', { class: 'live', role: 'status', 'aria-live': 'polite' }, 'connecting…');
  return {
    el,
    set(state, detail) {
      el.dataset.state = state;
      el.textContent =
        state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : state === 'retrying' ? 'reconnecting…' : `stopped${detail ? `: ${detail}` : ''}`;
    },
  };
}
