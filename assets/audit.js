// Audit trail page app. Renders everything inside `#app`; needs window.CF (app.js).
//
// Server: GET /api/audit?limit=N&before=ID&kind=K → {events: [{id, at, kind, outcome, actor,
// subject, reason, ip}], next_before}; newest first; `kind` is an exact kind or an area prefix.
//
// The page's own query string keeps the view (it is updated as the filters change, so a reload
// or a shared link shows the same thing):
//   ?kind=AREA        one of the areas of #audit-filter ("" = all)
//   &failures=1       "Failures only"
//   &limit=N          events fetched per page (1..500, default 100)
//
// Stable selectors (tests and docs rely on them; add, do not rename):
//   #audit-filter           select "Area" (values: "", login, device, api_key, settings, user,
//                           access, logout); asks the server again
//   #audit-failures-only    checkbox "Failures only"; filters the loaded events in the browser
//   #audit-refresh          button "Refresh": reloads the newest page
//   #audit-table            the table (caption #audit-caption); #audit-body its tbody, with
//                           aria-busy="true" on the table while a request is running
//   tr[data-kind=K][data-outcome=success|failure][data-id=ID]  one row per shown event
//     td[data-col=time|kind|outcome|actor|subject|reason|ip]; the time cell holds
//     <time datetime=RFC3339 title=RFC3339>; the kind cell .audit-kind-label (readable) and
//     code.audit-kind (raw); the outcome cell .badge-success / .badge-danger ("Success" /
//     "Failure"); an empty value shows "—" (read as "none")
//   #audit-empty            the empty-state row (when no loaded event is shown)
//   #audit-count            "N events" / "N of M loaded events" (polite live region)
//   #audit-load-older       button "Load older events" (present while the server has more)
//   #audit-end              "Beginning of the trail" note (when it has no more)
//   #audit-error            load errors
(function () {
  'use strict';

  const CF = window.CF;
  const { el } = CF;

  const AREAS = [
    ['', 'All'],
    ['login', 'Sign-ins'],
    ['device', 'Device'],
    ['api_key', 'API keys'],
    ['settings', 'Settings'],
    ['user', 'People'],
    ['access', 'Access'],
    ['logout', 'Sign-out'],
  ];
  const AREA_LABEL = Object.fromEntries(AREAS);

  const KIND_LABEL = {
    'login.local': 'Password sign-in',
    'login.sso': 'SSO sign-in',
    'login.device': 'Device sign-in',
    'device.approved': 'Device code approved',
    'device.denied': 'Device code denied',
    logout: 'Sign-out',
    'api_key.created': 'API key created',
    'api_key.revoked': 'API key revoked',
    'settings.saved': 'SSO settings saved',
    'settings.removed': 'SSO settings removed',
    'settings.reloaded': 'SSO settings reloaded',
    'user.created': 'User created',
    'user.changed': 'User changed',
    'access.changed': 'Access changed',
  };

  const ACTOR_HINT = {
    file: 'A change of oidc.json on disk',
    operator: 'The operator, through the admin socket',
  };

  const DEFAULT_LIMIT = 100;
  const MAX_LIMIT = 500;
  const COLUMNS = 7;

  const app = document.getElementById('app');
  if (!app) return;
  const $ = (id) => document.getElementById(id);

  const state = {
    kind: '',
    failuresOnly: false,
    limit: DEFAULT_LIMIT,
    events: [],
    nextBefore: null,
    loaded: false,
    // Bumped by every new first-page load, so that a late answer for an older view is dropped.
    generation: 0,
    busy: false,
  };

  function kindLabel(kind) {
    if (KIND_LABEL[kind]) return KIND_LABEL[kind];
    // An unknown (newer) kind: "area.event" → "Area event".
    const text = String(kind || '').replace(/[._]+/g, ' ').trim();
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : 'Unknown';
  }

  // ---------------------------------------------------------------- URL state

  function readQuery() {
    const params = new URLSearchParams(location.search);
    const kind = params.get('kind') || '';
    state.kind = Object.prototype.hasOwnProperty.call(AREA_LABEL, kind) ? kind : '';
    state.failuresOnly = params.get('failures') === '1';
    const limit = parseInt(params.get('limit') || '', 10);
    state.limit = Number.isFinite(limit) ? Math.min(Math.max(limit, 1), MAX_LIMIT) : DEFAULT_LIMIT;
  }

  function writeQuery() {
    const params = new URLSearchParams(location.search);
    if (state.kind) params.set('kind', state.kind);
    else params.delete('kind');
    if (state.failuresOnly) params.set('failures', '1');
    else params.delete('failures');
    const query = params.toString();
    const url = location.pathname + (query ? '?' + query : '') + location.hash;
    if (url !== location.pathname + location.search + location.hash) history.replaceState(null, '', url);
  }

  // ---------------------------------------------------------------- skeleton

  function renderSkeleton() {
    const areaSelect = el(
      'select',
      { id: 'audit-filter', class: 'select-small', 'aria-describedby': 'audit-filter-hint' },
      AREAS.map(([value, label]) => el('option', { value, selected: value === state.kind }, label)),
    );
    const failures = el('input', { type: 'checkbox', id: 'audit-failures-only', checked: state.failuresOnly });

    app.replaceChildren(
      el(
        'div',
        { class: 'page-head' },
        el('h1', {}, 'Audit trail'),
        el(
          'p',
          { class: 'lead' },
          'Sign-ins and their failures, device approvals, API keys, SSO settings, people and access changes, newest first. Times are in your local time zone.',
        ),
      ),
      el('div', { id: 'audit-error', hidden: true }),
      el(
        'section',
        { class: 'card', 'aria-labelledby': 'audit-heading' },
        el(
          'div',
          { class: 'toolbar' },
          el('h2', { id: 'audit-heading' }, 'Events'),
          el('span', { class: 'muted', id: 'audit-count', 'aria-live': 'polite' }),
          el('span', { class: 'spacer' }),
          el('button', { type: 'button', class: 'btn btn-secondary btn-small', id: 'audit-refresh' }, 'Refresh'),
        ),
        el(
          'div',
          { class: 'audit-filters', role: 'group', 'aria-label': 'Filter events' },
          el(
            'div',
            { class: 'audit-filter-field' },
            el('label', { for: 'audit-filter' }, 'Area'),
            areaSelect,
            el('span', { class: 'visually-hidden', id: 'audit-filter-hint' }, 'Changing the area loads the matching events from the server.'),
          ),
          el('label', { class: 'audit-check', for: 'audit-failures-only' }, failures, el('span', {}, 'Failures only')),
        ),
        el(
          'div',
          // Scrolls sideways when the table is wider than the screen: keyboard users reach it too.
          { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Audit events table' },
          el(
            'table',
            { class: 'table table-stack audit-table', id: 'audit-table' },
            el('caption', { class: 'visually-hidden', id: 'audit-caption' }, 'Audit events, newest first'),
            el(
              'thead',
              {},
              el(
                'tr',
                {},
                el('th', { scope: 'col' }, 'Time'),
                el('th', { scope: 'col' }, 'Event'),
                el('th', { scope: 'col' }, 'Outcome'),
                el('th', { scope: 'col' }, 'Actor'),
                el('th', { scope: 'col' }, 'Subject'),
                el('th', { scope: 'col' }, 'Reason'),
                el('th', { scope: 'col' }, 'IP address'),
              ),
            ),
            el('tbody', { id: 'audit-body' }, el('tr', {}, el('td', { colspan: String(COLUMNS), class: 'muted' }, 'Loading…'))),
          ),
        ),
        el(
          'div',
          { class: 'audit-more' },
          el('button', { type: 'button', class: 'btn btn-secondary', id: 'audit-load-older', hidden: true }, 'Load older events'),
          el('p', { class: 'muted small', id: 'audit-end', tabindex: '-1', hidden: true }, 'Beginning of the trail: there are no older events.'),
        ),
      ),
    );
  }

  // ---------------------------------------------------------------- rows

  function none() {
    return el('span', { class: 'audit-none' }, el('span', { 'aria-hidden': 'true' }, '—'), el('span', { class: 'visually-hidden' }, 'none'));
  }

  function textOrNone(value, attrs) {
    if (value === null || value === undefined || value === '') return none();
    return el('span', attrs || {}, String(value));
  }

  function renderRow(event) {
    const failed = event.outcome === 'failure';
    const cell = (col, label, attrs, ...children) =>
      el('td', Object.assign({ dataset: { col, label } }, attrs || {}), el('div', { class: 'cell' }, ...children));
    const when = event.at
      ? el('time', { datetime: event.at, title: event.at }, CF.formatTime(event.at))
      : none();
    const outcome = failed
      ? el('span', { class: 'badge badge-danger audit-outcome' }, el('span', { 'aria-hidden': 'true' }, '✕'), 'Failure')
      : event.outcome === 'success'
        ? el('span', { class: 'badge badge-success audit-outcome' }, el('span', { 'aria-hidden': 'true' }, '✓'), 'Success')
        : el('span', { class: 'badge audit-outcome' }, event.outcome || 'Unknown');
    return el(
      'tr',
      { dataset: { id: String(event.id), kind: event.kind || '', outcome: event.outcome || '' }, class: failed ? 'is-failure' : null },
      cell('time', 'Time', { class: 'audit-time' }, when),
      cell(
        'kind',
        'Event',
        null,
        el('span', { class: 'audit-kind-label' }, kindLabel(event.kind)),
        el('code', { class: 'audit-kind' }, event.kind || ''),
      ),
      cell('outcome', 'Outcome', null, outcome),
      cell('actor', 'Actor', { class: 'break' }, textOrNone(event.actor, { title: ACTOR_HINT[event.actor] || null })),
      cell('subject', 'Subject', { class: 'break' }, textOrNone(event.subject)),
      cell('reason', 'Reason', { class: 'break audit-reason' }, textOrNone(event.reason)),
      cell('ip', 'IP address', { class: 'audit-ip' }, textOrNone(event.ip, { class: 'mono' })),
    );
  }

  function shownEvents() {
    return state.failuresOnly ? state.events.filter((e) => e.outcome === 'failure') : state.events;
  }

  function emptyText() {
    const area = state.kind ? AREA_LABEL[state.kind] : null;
    const more = state.nextBefore !== null ? ' Load older events to look further back.' : '';
    if (!state.events.length) {
      return area ? 'No ' + area.toLowerCase() + ' events recorded.' + more : 'No events recorded yet.' + more;
    }
    return (area ? 'No failed ' + area.toLowerCase() + ' events' : 'No failures') + ' among the loaded events.' + more;
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }

  function renderRows() {
    const body = $('audit-body');
    const shown = shownEvents();
    if (!shown.length) {
      body.replaceChildren(
        el('tr', { id: 'audit-empty' }, el('td', { colspan: String(COLUMNS), class: 'audit-empty' }, emptyText())),
      );
    } else {
      body.replaceChildren(...shown.map(renderRow));
    }
    renderStatus();
  }

  function renderStatus() {
    const total = state.events.length;
    const shown = shownEvents().length;
    const more = state.nextBefore !== null;
    let count = state.failuresOnly
      ? plural(shown, 'failure', 'failures') + ' among ' + plural(total, 'loaded event', 'loaded events')
      : plural(total, 'event', 'events');
    if (more) count += ', more older';
    $('audit-count').textContent = count;

    const parts = ['Audit events, newest first'];
    parts.push(state.kind ? 'area: ' + AREA_LABEL[state.kind] : 'all areas');
    if (state.failuresOnly) parts.push('failures only');
    $('audit-caption').textContent = parts.join('; ');

    $('audit-load-older').hidden = !more;
    $('audit-end').hidden = more || !state.loaded;
  }

  function setBusy(busy) {
    state.busy = busy;
    const table = $('audit-table');
    if (busy) table.setAttribute('aria-busy', 'true');
    else table.removeAttribute('aria-busy');
    // aria-disabled, not disabled: a focused button that becomes disabled loses the focus.
    for (const button of [$('audit-refresh'), $('audit-load-older')]) {
      if (busy) {
        button.setAttribute('aria-busy', 'true');
        button.setAttribute('aria-disabled', 'true');
      } else {
        button.removeAttribute('aria-busy');
        button.removeAttribute('aria-disabled');
      }
    }
  }

  // ---------------------------------------------------------------- loading

  function query(before) {
    const params = new URLSearchParams();
    params.set('limit', String(state.limit));
    if (before !== null && before !== undefined) params.set('before', String(before));
    if (state.kind) params.set('kind', state.kind);
    return '/api/audit?' + params.toString();
  }

  function nextBeforeOf(answer) {
    const n = answer && answer.next_before;
    return n === null || n === undefined ? null : n;
  }

  /** Loads the newest page for the current area, replacing what is shown. */
  async function loadFirst() {
    const generation = ++state.generation;
    CF.showError($('audit-error'), null);
    setBusy(true);
    try {
      const answer = await CF.api('GET', query(null));
      if (generation !== state.generation) return;
      state.events = (answer && Array.isArray(answer.events) ? answer.events : []).slice();
      state.nextBefore = nextBeforeOf(answer);
      state.loaded = true;
      renderRows();
    } catch (err) {
      if (generation !== state.generation) return;
      state.events = [];
      state.nextBefore = null;
      state.loaded = false;
      CF.showError($('audit-error'), { message: 'Could not load the audit trail: ' + err.message, details: err.details });
      $('audit-body').replaceChildren();
      renderStatus();
      $('audit-count').textContent = '';
    } finally {
      if (generation === state.generation) setBusy(false);
    }
  }

  /** Appends the next older page. */
  async function loadOlder() {
    if (state.nextBefore === null || state.busy) return;
    const generation = state.generation;
    const button = $('audit-load-older');
    setBusy(true);
    try {
      const answer = await CF.api('GET', query(state.nextBefore));
      if (generation !== state.generation) return;
      const seen = new Set(state.events.map((e) => e.id));
      const older = (answer && Array.isArray(answer.events) ? answer.events : []).filter((e) => !seen.has(e.id));
      state.events = state.events.concat(older);
      state.nextBefore = nextBeforeOf(answer);
      const hadFocus = document.activeElement === button;
      renderRows();
      // The button disappears at the end of the trail: keep the focus on the page.
      if (hadFocus && state.nextBefore === null) $('audit-end').focus();
    } catch (err) {
      if (generation !== state.generation) return;
      CF.toast('Could not load older events: ' + err.message, 'error');
    } finally {
      if (generation === state.generation) setBusy(false);
    }
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $('audit-filter').addEventListener('change', () => {
      state.kind = $('audit-filter').value;
      writeQuery();
      state.events = [];
      state.nextBefore = null;
      loadFirst();
    });
    $('audit-failures-only').addEventListener('change', () => {
      state.failuresOnly = $('audit-failures-only').checked;
      writeQuery();
      if (state.loaded) renderRows();
    });
    $('audit-refresh').addEventListener('click', async () => {
      if (state.busy) return;
      await loadFirst();
      if (state.loaded) CF.toast('Audit trail refreshed.', 'info');
    });
    $('audit-load-older').addEventListener('click', loadOlder);
  }

  async function start() {
    readQuery();
    renderSkeleton();
    wire();
    await loadFirst();
    app.dataset.ready = 'true';
  }

  start();
})();
