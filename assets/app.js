// CoderFlow shared page helper, loaded on every page before the page's own script.
//
// Exposes `window.CF`:
//   CF.api(method, path, body)  fetch JSON from the same origin with the session cookie; unsafe
//                               methods send `X-CSRF-Token` from <meta name="csrf-token">.
//                               Resolves with the parsed body (null when empty); rejects with a
//                               CF.ApiError {status, code, message, details} built from the
//                               server's `{error, message, details}`. A 401 sends the browser to
//                               /login?return_to=<this page>.
//   CF.el(tag, attrs, ...children)  builds DOM nodes (text is always set as text, never as HTML).
//   CF.toast(message, kind)     a transient message in the `#toast-region` live region
//                               (kind: "success" | "error" | "info").
//   CF.showError(target, err)   renders an error (ApiError or Error) into `target` as an
//                               `.alert.alert-error` with the message and any details.
//   CF.copyText(text)           copies to the clipboard (falls back to execCommand).
//   CF.initTabs(tablist)        WAI-ARIA tabs for a `[role=tablist]` element whose `[role=tab]`
//                               children have `aria-controls`; arrow keys, Home and End move.
//                               Returns {select(tabOrId)}. Done automatically for
//                               `[role=tablist][data-tabs]` present at load.
//   CF.formatTime(value)        a readable local date-time for an RFC 3339 string or epoch.
//
// Copy buttons: any element with `data-copy="TEXT"` copies TEXT on click; with
// `data-copy-target="#selector"` it copies that element's value (or text). The button says
// "Copied" for two seconds and the live region announces it.
//
// Strict CSP (`default-src 'self'`): no inline styles, no eval, no HTML strings.
(function () {
  'use strict';

  const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') || '' : '';
  }

  class ApiError extends Error {
    constructor(status, body, fallback) {
      const message =
        (body && typeof body.message === 'string' && body.message) ||
        fallback ||
        `Request failed (HTTP ${status})`;
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.code = (body && typeof body.error === 'string' && body.error) || 'http_' + status;
      this.details = body && Array.isArray(body.details) ? body.details : [];
      this.body = body || null;
    }
  }

  async function api(method, path, body) {
    method = (method || 'GET').toUpperCase();
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (UNSAFE.has(method)) headers['X-CSRF-Token'] = csrfToken();
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, null, 'Cannot reach the server. Check your connection and try again.');
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!response.ok) {
      if (response.status === 401) {
        const here = location.pathname + location.search;
        location.assign('/login?return_to=' + encodeURIComponent(here));
      }
      throw new ApiError(response.status, data, data ? null : text.trim().slice(0, 300) || null);
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'class') node.className = value;
        else if (key === 'text') node.textContent = value;
        else if (key === 'dataset') Object.assign(node.dataset, value);
        else if (key.startsWith('on') && typeof value === 'function') {
          node.addEventListener(key.slice(2), value);
        } else if (key === 'value') node.value = value;
        else if (key === 'checked' || key === 'selected' || key === 'disabled' || key === 'hidden') {
          node[key] = true;
          node.setAttribute(key, '');
        } else node.setAttribute(key, value === true ? '' : String(value));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(node, child);
      else if (child instanceof Node) node.appendChild(child);
      else node.appendChild(document.createTextNode(String(child)));
    }
  }

  function toastRegion() {
    let region = document.getElementById('toast-region');
    if (!region) {
      region = el('div', {
        id: 'toast-region',
        class: 'toast-region',
        role: 'status',
        'aria-live': 'polite',
        'aria-atomic': 'false',
      });
      document.body.appendChild(region);
    }
    return region;
  }

  function toast(message, kind) {
    kind = kind || 'info';
    const region = toastRegion();
    const item = el('div', { class: 'toast toast-' + kind, dataset: { kind } }, message);
    region.appendChild(item);
    const ttl = kind === 'error' ? 8000 : 4000;
    setTimeout(() => item.classList.add('toast-leaving'), ttl);
    setTimeout(() => item.remove(), ttl + 400);
    return item;
  }

  function showError(target, err) {
    if (!target) return;
    target.replaceChildren();
    if (!err) {
      target.hidden = true;
      return;
    }
    const message = (err && err.message) || String(err);
    const box = el('div', { class: 'alert alert-error', role: 'alert' }, el('p', {}, message));
    const details = (err && err.details) || [];
    if (details.length) {
      box.appendChild(
        el(
          'ul',
          { class: 'error-details' },
          details.map((d) =>
            el('li', {}, d.pointer ? el('code', {}, d.pointer) : null, d.pointer ? ' ' : null, d.message || ''),
          ),
        ),
      );
    }
    target.appendChild(box);
    target.hidden = false;
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (e) {
        // Permission refused: fall through to the selection fallback.
      }
    }
    const area = el('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (e) {
      ok = false;
    }
    area.remove();
    return ok;
  }

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-copy], [data-copy-target]');
    if (!button) return;
    event.preventDefault();
    let text = button.getAttribute('data-copy');
    const targetSel = button.getAttribute('data-copy-target');
    if (targetSel) {
      const target = document.querySelector(targetSel);
      if (target) text = 'value' in target ? target.value : target.textContent;
    }
    if (text === null || text === undefined) return;
    const ok = await copyText(text);
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = ok ? 'Copied' : 'Copy failed';
    button.classList.toggle('is-copied', ok);
    toast(ok ? 'Copied to clipboard' : 'Could not copy; select the text and copy it yourself', ok ? 'success' : 'error');
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(() => {
      button.textContent = button.dataset.label;
      button.classList.remove('is-copied');
    }, 2000);
  });

  function initTabs(tablist) {
    const tabs = () => Array.from(tablist.querySelectorAll('[role="tab"]'));
    function select(tabOrId, focus) {
      const tab = typeof tabOrId === 'string' ? document.getElementById(tabOrId) : tabOrId;
      if (!tab) return;
      for (const t of tabs()) {
        const on = t === tab;
        t.setAttribute('aria-selected', on ? 'true' : 'false');
        t.tabIndex = on ? 0 : -1;
        t.classList.toggle('is-active', on);
        const panel = document.getElementById(t.getAttribute('aria-controls'));
        if (panel) panel.hidden = !on;
      }
      if (focus) tab.focus();
      tablist.dispatchEvent(new CustomEvent('cf:tabchange', { detail: { tab } }));
    }
    tablist.addEventListener('click', (event) => {
      const tab = event.target.closest('[role="tab"]');
      if (tab && tablist.contains(tab)) {
        event.preventDefault();
        select(tab, true);
      }
    });
    tablist.addEventListener('keydown', (event) => {
      const list = tabs();
      const index = list.indexOf(document.activeElement);
      if (index < 0) return;
      let next = null;
      if (event.key === 'ArrowRight' || event.key === 'ArrowDown') next = list[(index + 1) % list.length];
      else if (event.key === 'ArrowLeft' || event.key === 'ArrowUp') next = list[(index - 1 + list.length) % list.length];
      else if (event.key === 'Home') next = list[0];
      else if (event.key === 'End') next = list[list.length - 1];
      if (next) {
        event.preventDefault();
        select(next, true);
      }
    });
    const current = tabs().find((t) => t.getAttribute('aria-selected') === 'true') || tabs()[0];
    if (current) select(current, false);
    return { select: (t) => select(t, false) };
  }

  function formatTime(value) {
    if (value === null || value === undefined || value === '') return '';
    const date = typeof value === 'number' ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  }

  function autoInit() {
    for (const list of document.querySelectorAll('[role="tablist"][data-tabs]')) initTabs(list);
    for (const link of document.querySelectorAll('.topnav a[href]')) {
      if (link.getAttribute('href') === location.pathname) link.setAttribute('aria-current', 'page');
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', autoInit);
  else autoInit();

  window.CF = { api, ApiError, el, toast, showError, copyText, initTabs, formatTime, csrfToken };
})();
