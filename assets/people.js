// People & Access page app. Renders everything inside `#app`; needs window.CF (app.js).
//
// Server: GET /api/users, GET /api/me, POST /api/users, PATCH /api/users/{username}
// (disabled: true also revokes the user's sessions and API keys for good),
// PUT /api/users/{username}/access (409 managed_by_provider for a user whose access the identity
// provider manages), GET /api/users/{username}/keys,
// DELETE /api/users/{username}/keys/{id}.
//
// Stable selectors (tests and docs rely on them; add, do not rename):
//   #users-table            the table; #users-body its tbody; #user-count "N users"
//   #user-filter            search box "Filter users"
//   tr[data-username=U]     one row per user (data-disabled="true|false", data-source="local|sso",
//                           data-managed="true|false": the answer's access_managed_by_provider)
//     td[data-col=user|source|access|status|actions]; in the user cell .user-username,
//       [data-field=name], [data-field=email]
//     .badge-sso / .badge-local         sign-in source
//     .badge-disabled                   shown when the user is disabled
//     .access-badges [data-role=ROLE]   the user's current bindings
//     select[data-action=role]          labelled "Access for U" (values: "", viewer, developer,
//                                       environment_admin, server_admin; "" = no access)
//     button[data-action=apply-access]  "Apply" (aria-label "Apply access for U"); enabled when the
//                                       select differs from the current access
//     .access-managed                   instead of the select and Apply, for a user whose access the
//                                       identity provider manages (role_mapping in oidc.json):
//                                       "Managed by the identity provider (role_mapping)"; a change
//                                       answered 409 managed_by_provider (the list was older than
//                                       the configuration) shows the server's message in a toast
//                                       and turns the row read-only, the message then also in
//                                       the row's .access-managed-refusal
//     button[data-action=toggle-disabled]  "Disable" / "Enable" (aria-label "Disable U" /
//                                       "Enable U"); not offered for yourself; Disable asks first
//                                       in #disable-dialog
//     button[data-action=keys]          "Keys" (aria-label "API keys of U"): opens #user-keys-dialog
//   #add-user-form          fields #new-username "Username", #new-email "Email", #new-name "Name",
//                           #new-role "Access", #new-password "Password (optional)";
//                           submit #add-user-submit "Add user"; errors #add-user-error and
//                           #err-new-<field>
//   #self-demote-dialog     confirmation before removing your own Server Admin access
//                           (#self-demote-confirm "Change my access", #self-demote-cancel "Cancel")
//   #disable-dialog         confirmation before disabling a user (data-username=U): #disable-text
//                           says their sessions and API keys end for good; #disable-confirm
//                           "Disable user", #disable-cancel "Cancel"
//   #user-keys-dialog       a user's API keys (data-username=U; data-loaded="true" once the list
//                           or its error is shown): title #user-keys-title
//                           "API keys of U", errors #user-keys-error, #user-keys-empty "No API keys",
//                           #user-keys-table (tbody #user-keys-body) with tr[data-key-id=ID] and
//                           td[data-col=name|prefix|created|last-used|expires|actions];
//     button[data-action=revoke-key]    "Revoke" (aria-label "Revoke key NAME of U") opens the
//                                       confirmation #revoke-key-confirm (text #revoke-key-text,
//                                       #revoke-key-yes "Revoke key", #revoke-key-no "Cancel");
//                                       the list then reloads and a toast says "Key NAME of U revoked"
//                           #user-keys-close "Close"
//   #people-error           load errors
(function () {
  'use strict';

  const CF = window.CF;
  const { el } = CF;

  const ROLES = [
    ['viewer', 'Viewer', 'environment:*'],
    ['developer', 'Developer', 'environment:*'],
    ['environment_admin', 'Environment Admin', 'environment:*'],
    ['server_admin', 'Server Admin', 'server'],
  ];
  const ROLE_LABEL = Object.fromEntries(ROLES.map(([v, l]) => [v, l]));
  const ROLE_SCOPE = Object.fromEntries(ROLES.map(([v, , s]) => [v, s]));
  const ROLE_RANK = { viewer: 1, developer: 2, environment_admin: 3, server_admin: 4, manager: 3, admin: 4 };
  const LEGACY = { manager: 'environment_admin', admin: 'server_admin' };

  const state = { users: [], me: null, filter: '' };
  const app = document.getElementById('app');
  if (!app) return;
  const $ = (id) => document.getElementById(id);

  function scopeText(scope) {
    if (scope === 'server') return 'server';
    if (scope === 'environment:*') return 'all environments';
    if (scope && scope.startsWith('environment:')) return 'environment ' + scope.slice('environment:'.length);
    return scope || '';
  }

  // The one role the select shows: the highest binding the user has.
  function primaryRole(user) {
    let best = '';
    for (const a of user.access || []) {
      const role = LEGACY[a.role] || a.role;
      if ((ROLE_RANK[role] || 0) > (ROLE_RANK[best] || 0)) best = role;
    }
    return best;
  }

  function accessFor(role) {
    return role ? [{ role, scope: ROLE_SCOPE[role] || 'environment:*' }] : [];
  }

  // ---------------------------------------------------------------- skeleton

  function fieldBlock(id, key, label, input, hint) {
    input.id = id;
    input.name = key;
    input.setAttribute('aria-describedby', [hint ? id + '-hint' : null, 'err-new-' + key].filter(Boolean).join(' '));
    return el(
      'div',
      { class: 'field', id: 'field-new-' + key },
      el('label', { for: id }, label),
      input,
      hint ? el('p', { class: 'hint', id: id + '-hint' }, hint) : null,
      el('p', { class: 'field-error', id: 'err-new-' + key, hidden: true }),
    );
  }

  function roleOptions(selected, withNone) {
    const options = [];
    if (withNone) options.push(el('option', { value: '', selected: selected === '' }, 'No access'));
    for (const [value, label] of ROLES) options.push(el('option', { value, selected: value === selected }, label));
    return options;
  }

  function renderSkeleton() {
    const addForm = el(
      'form',
      { id: 'add-user-form', class: 'stack', novalidate: true, 'aria-labelledby': 'add-user-heading' },
      el('div', { id: 'add-user-error', hidden: true }),
      el(
        'div',
        { class: 'grid-2' },
        fieldBlock('new-username', 'username', 'Username', el('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none' }), 'Lower-case letters and digits, e.g. johndoe.'),
        fieldBlock('new-email', 'email', 'Email', el('input', { type: 'email', required: true, autocomplete: 'off', spellcheck: 'false' }), 'SSO logins are matched to this address.'),
        fieldBlock('new-name', 'name', 'Name', el('input', { type: 'text', required: true, autocomplete: 'off' })),
        fieldBlock('new-role', 'role', 'Access', el('select', {}, roleOptions('developer', false)), 'Environment roles apply to all environments; Server Admin to the whole server.'),
        fieldBlock('new-password', 'password', 'Password (optional)', el('input', { type: 'password', autocomplete: 'new-password' }), 'Leave empty for an SSO-only user, who signs in with SSO.'),
      ),
      el('div', { class: 'form-actions' }, el('span', { class: 'spacer' }), el('button', { type: 'submit', class: 'btn btn-primary', id: 'add-user-submit' }, 'Add user')),
    );

    const selfDialog = el(
      'dialog',
      { id: 'self-demote-dialog', class: 'dialog', 'aria-labelledby': 'self-demote-title', 'aria-describedby': 'self-demote-text' },
      el(
        'form',
        { method: 'dialog', class: 'stack' },
        el('h2', { id: 'self-demote-title' }, 'Remove your own Server Admin access?'),
        el('p', { id: 'self-demote-text' }, 'You will no longer be able to manage people or SSO settings. Another Server Admin would have to give the access back.'),
        el(
          'div',
          { class: 'dialog-actions' },
          el('button', { type: 'submit', value: 'cancel', class: 'btn btn-secondary', id: 'self-demote-cancel', autofocus: true }, 'Cancel'),
          el('button', { type: 'submit', value: 'confirm', class: 'btn btn-danger', id: 'self-demote-confirm' }, 'Change my access'),
        ),
      ),
    );

    const disableDialog = el(
      'dialog',
      { id: 'disable-dialog', class: 'dialog', 'aria-labelledby': 'disable-title', 'aria-describedby': 'disable-text' },
      el(
        'form',
        { method: 'dialog', class: 'stack' },
        el('h2', { id: 'disable-title' }, 'Disable this user?'),
        el('div', { id: 'disable-text', class: 'stack-tight' }),
        el(
          'div',
          { class: 'dialog-actions' },
          el('button', { type: 'submit', value: 'cancel', class: 'btn btn-secondary', id: 'disable-cancel', autofocus: true }, 'Cancel'),
          el('button', { type: 'submit', value: 'confirm', class: 'btn btn-danger', id: 'disable-confirm' }, 'Disable user'),
        ),
      ),
    );

    const keysDialog = el(
      'dialog',
      { id: 'user-keys-dialog', class: 'dialog dialog-wide', 'aria-labelledby': 'user-keys-title', 'aria-describedby': 'user-keys-hint' },
      el(
        'form',
        { method: 'dialog', class: 'stack' },
        el('h2', { id: 'user-keys-title' }, 'API keys'),
        el(
          'p',
          { class: 'muted', id: 'user-keys-hint' },
          'Keys sign in programs such as the coder CLI and editor extensions with this user\'s access. Revoking a key ends its access at once and cannot be undone.',
        ),
        el('div', { id: 'user-keys-error', hidden: true }),
        el('div', { id: 'user-keys-list', 'aria-live': 'polite' }),
        el(
          'div',
          { class: 'alert alert-warning confirm-panel', id: 'revoke-key-confirm', role: 'group', 'aria-labelledby': 'revoke-key-text', hidden: true },
          el('p', { id: 'revoke-key-text' }),
          el(
            'div',
            { class: 'dialog-actions' },
            el('button', { type: 'button', class: 'btn btn-secondary', id: 'revoke-key-no' }, 'Cancel'),
            el('button', { type: 'button', class: 'btn btn-danger', id: 'revoke-key-yes' }, 'Revoke key'),
          ),
        ),
        el(
          'div',
          { class: 'dialog-actions' },
          el('button', { type: 'submit', value: 'close', class: 'btn btn-secondary', id: 'user-keys-close' }, 'Close'),
        ),
      ),
    );

    app.replaceChildren(
      el(
        'div',
        { class: 'page-head' },
        el('h1', {}, 'People & Access'),
        el('p', { class: 'lead' }, 'Everyone who can sign in, how they sign in, and what they may do. Environment roles apply to all environments; Server Admin applies to the whole server.'),
      ),
      el('div', { id: 'people-error', hidden: true }),
      el(
        'section',
        { class: 'card', 'aria-labelledby': 'users-heading' },
        el(
          'div',
          { class: 'toolbar' },
          el('h2', { id: 'users-heading' }, 'Users'),
          el('span', { class: 'muted', id: 'user-count', 'aria-live': 'polite' }),
          el('span', { class: 'spacer' }),
          el('label', { for: 'user-filter', class: 'visually-hidden' }, 'Filter users'),
          el('input', { type: 'search', id: 'user-filter', placeholder: 'Filter users', autocomplete: 'off' }),
        ),
        el(
          'div',
          // Scrolls sideways when the table is wider than the screen: keyboard users reach it too.
          { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Users table' },
          el(
            'table',
            { class: 'table table-stack', id: 'users-table', 'aria-labelledby': 'users-heading' },
            el(
              'thead',
              {},
              el(
                'tr',
                {},
                el('th', { scope: 'col' }, 'User'),
                el('th', { scope: 'col' }, 'Sign-in'),
                el('th', { scope: 'col' }, 'Access'),
                el('th', { scope: 'col' }, 'Status'),
                el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Actions')),
              ),
            ),
            el('tbody', { id: 'users-body' }, el('tr', {}, el('td', { colspan: '5', class: 'muted' }, 'Loading…'))),
          ),
        ),
      ),
      el('section', { class: 'card', id: 'add-user', 'aria-labelledby': 'add-user-heading' }, el('h2', { id: 'add-user-heading' }, 'Add user'), addForm),
      selfDialog,
      disableDialog,
      keysDialog,
    );
  }

  // ---------------------------------------------------------------- rows

  let rowSeq = 0;

  function renderRow(user) {
    const n = ++rowSeq;
    const isMe = state.me && state.me === user.username;
    const current = primaryRole(user);
    const managed = user.access_managed_by_provider === true;
    // Managed by the identity provider: the access is shown, not offered for editing.
    const edit = managed
      ? el(
          'p',
          { class: 'access-managed', id: 'access-managed-' + n, tabindex: '-1' },
          el('strong', {}, 'Managed by the identity provider (role_mapping)'),
          el('span', { class: 'visually-hidden' }, ' for ' + user.username),
          '. Change ' + user.username + '\'s groups at the identity provider; the next SSO sign-in applies them.',
          // The server's word when a change was refused (409 managed_by_provider).
          user._refusal ? el('span', { class: 'access-managed-refusal', dataset: { field: 'refusal' } }, ' ' + user._refusal) : null,
        )
      : el(
          'div',
          { class: 'access-edit' },
          el('label', { for: 'access-' + n, class: 'visually-hidden' }, 'Access for ' + user.username),
          el('select', { id: 'access-' + n, class: 'select-small', dataset: { action: 'role', current } }, roleOptions(current, true)),
          el(
            'button',
            { type: 'button', class: 'btn btn-secondary btn-small', dataset: { action: 'apply-access' }, 'aria-label': 'Apply access for ' + user.username, disabled: true },
            'Apply',
          ),
        );
    const bindings = (user.access || []).map((a) => {
      const role = LEGACY[a.role] || a.role;
      return el('span', { class: 'badge badge-role', dataset: { role } }, (ROLE_LABEL[role] || role) + ' · ' + scopeText(a.scope));
    });
    const toggle = isMe
      ? el('span', { class: 'muted small' }, 'This is you')
      : el(
          'button',
          {
            type: 'button',
            class: user.disabled ? 'btn btn-secondary btn-small' : 'btn btn-danger-outline btn-small',
            dataset: { action: 'toggle-disabled' },
            'aria-label': (user.disabled ? 'Enable ' : 'Disable ') + user.username,
          },
          user.disabled ? 'Enable' : 'Disable',
        );
    const keys = el(
      'button',
      { type: 'button', class: 'btn btn-secondary btn-small', dataset: { action: 'keys' }, 'aria-label': 'API keys of ' + user.username },
      'Keys',
    );
    const created = user.created_at ? 'Created ' + CF.formatTime(user.created_at) : null;
    // One wrapper per cell keeps the stacked (narrow screen) layout a simple two-column grid.
    const cell = (col, label, attrs, ...children) =>
      el('td', Object.assign({ dataset: { col, label } }, attrs || {}), el('div', { class: 'cell' }, ...children));
    return el(
      'tr',
      {
        dataset: { username: user.username, disabled: user.disabled ? 'true' : 'false', source: user.source || '', managed: managed ? 'true' : 'false' },
        class: user.disabled ? 'is-disabled' : null,
      },
      cell(
        'user',
        'User',
        { class: 'break' },
        el('div', { class: 'user-line' }, el('strong', { class: 'user-username', title: created }, user.username), isMe ? el('span', { class: 'badge badge-muted you' }, 'you') : null),
        el('div', { class: 'user-name', dataset: { field: 'name' } }, user.name || ''),
        el('div', { class: 'user-email muted small', dataset: { field: 'email' } }, user.email || ''),
      ),
      cell(
        'source',
        'Sign-in',
        null,
        user.source === 'sso' ? el('span', { class: 'badge badge-sso' }, 'SSO') : el('span', { class: 'badge badge-local' }, 'Local'),
      ),
      cell(
        'access',
        'Access',
        null,
        el('div', { class: 'access-badges' }, bindings.length ? bindings : el('span', { class: 'muted' }, 'No access')),
        edit,
      ),
      cell(
        'status',
        'Status',
        null,
        user.disabled ? el('span', { class: 'badge badge-disabled' }, 'Disabled') : el('span', { class: 'badge badge-success' }, 'Active'),
      ),
      cell('actions', 'Actions', { class: 'actions-cell' }, el('div', { class: 'row-actions' }, keys, toggle)),
    );
  }

  function matches(user) {
    const f = state.filter.trim().toLowerCase();
    if (!f) return true;
    return [user.username, user.name, user.email].some((v) => (v || '').toLowerCase().includes(f));
  }

  function renderRows() {
    const body = $('users-body');
    const shown = state.users.filter(matches);
    if (!shown.length) {
      body.replaceChildren(el('tr', {}, el('td', { colspan: '5', class: 'muted' }, state.users.length ? 'No user matches the filter.' : 'No users yet.')));
    } else {
      body.replaceChildren(...shown.map(renderRow));
    }
    const total = state.users.length;
    $('user-count').textContent = total === 1 ? '1 user' : total + ' users';
  }

  function rowOf(username) {
    for (const tr of $('users-body').querySelectorAll('tr[data-username]')) if (tr.dataset.username === username) return tr;
    return null;
  }

  // Swaps a user's row and puts the focus back on the same control.
  // The answers of PATCH and PUT .../access carry access_managed_by_provider; an older server's
  // do not, and then what the list said is kept for what the answer does not say.
  function replaceUser(user, focusAction) {
    const i = state.users.findIndex((u) => u.username === user.username);
    if (i >= 0) user = Object.assign({}, state.users[i], user);
    if (i >= 0) state.users[i] = user;
    else state.users.push(user);
    const old = rowOf(user.username);
    if (old && matches(user)) {
      const fresh = renderRow(user);
      old.replaceWith(fresh);
      if (focusAction) {
        const target =
          fresh.querySelector('[data-action="' + focusAction + '"]:not([disabled])') ||
          fresh.querySelector('select[data-action="role"]') ||
          fresh.querySelector('.access-managed');
        if (target) target.focus();
      }
    } else {
      renderRows();
    }
  }

  // ---------------------------------------------------------------- actions

  function path(username) {
    return '/api/users/' + encodeURIComponent(username);
  }

  async function applyAccess(tr, confirmed) {
    const username = tr.dataset.username;
    const select = tr.querySelector('select[data-action="role"]');
    const role = select.value;
    if (!confirmed && username === state.me && role !== 'server_admin') {
      const dialog = $('self-demote-dialog');
      dialog.returnValue = '';
      dialog.dataset.username = username;
      dialog.showModal();
      return;
    }
    const button = tr.querySelector('[data-action="apply-access"]');
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const user = await CF.api('PUT', path(username) + '/access', accessFor(role));
      replaceUser(user && user.username ? user : Object.assign({}, findUser(username), { access: accessFor(role) }), 'role');
      CF.toast('Access for ' + username + ' is now ' + (role ? ROLE_LABEL[role] : 'none') + '.', 'success');
    } catch (err) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      CF.toast('Could not change access for ' + username + ': ' + err.message, 'error');
      if (err.status === 409 && err.code === 'managed_by_provider') {
        // The configuration changed since the list was loaded: the row turns read-only.
        const user = findUser(username);
        if (user) replaceUser(Object.assign({}, user, { access_managed_by_provider: true, _refusal: err.message }), 'role');
      }
    }
  }

  // Disabling ends the user's sessions and revokes their API keys for good: asked first.
  function askDisable(username) {
    const dialog = $('disable-dialog');
    dialog.returnValue = '';
    dialog.dataset.username = username;
    $('disable-title').textContent = 'Disable ' + username + '?';
    $('disable-text').replaceChildren(
      el('p', {}, username + ' can no longer sign in. Their sessions end now and all their API keys are revoked.'),
      el('p', { class: 'muted' }, 'This is for good: enabling ' + username + ' again does not bring the sessions or keys back; they sign in again and create new keys.'),
    );
    dialog.showModal();
  }

  async function toggleDisabled(tr, confirmed) {
    const username = tr.dataset.username;
    const user = findUser(username);
    if (!user) return;
    const disabled = !user.disabled;
    if (disabled && !confirmed) {
      askDisable(username);
      return;
    }
    const button = tr.querySelector('[data-action="toggle-disabled"]');
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const answer = await CF.api('PATCH', path(username), { disabled });
      replaceUser(answer && answer.username ? answer : Object.assign({}, user, { disabled }), 'toggle-disabled');
      CF.toast(
        disabled
          ? username + ' is disabled. Their sessions ended and their API keys were revoked.'
          : username + ' is enabled. Sessions and API keys ended by disabling stay revoked.',
        'success',
      );
    } catch (err) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      CF.toast('Could not ' + (disabled ? 'disable ' : 'enable ') + username + ': ' + err.message, 'error');
    }
  }

  // ---------------------------------------------------------------- API keys of a user

  const keysState = { username: null, keys: [], seq: 0, pending: null, busy: false };

  function keysPath(username, id) {
    return path(username) + '/keys' + (id ? '/' + encodeURIComponent(id) : '');
  }

  function keyById(id) {
    return keysState.keys.find((k) => String(k.id) === String(id)) || null;
  }

  function timeText(value, empty) {
    if (!value) return el('span', { class: 'muted' }, empty);
    return el('time', { datetime: String(value) }, CF.formatTime(value));
  }

  function expiresText(value) {
    if (!value) return el('span', { class: 'muted' }, 'never');
    const at = new Date(value);
    const past = !Number.isNaN(at.getTime()) && at.getTime() <= Date.now();
    return el('span', { class: 'key-expiry' }, el('time', { datetime: String(value) }, CF.formatTime(value)), past ? el('span', { class: 'badge badge-danger' }, 'expired') : null);
  }

  function renderKeys() {
    const username = keysState.username;
    const list = $('user-keys-list');
    if (!keysState.keys.length) {
      list.replaceChildren(el('p', { id: 'user-keys-empty', class: 'empty-state' }, 'No API keys'));
      return;
    }
    const cell = (col, label, ...children) => el('td', { dataset: { col, label } }, el('div', { class: 'cell' }, ...children));
    const rows = keysState.keys.map((key) =>
      el(
        'tr',
        { dataset: { keyId: String(key.id) } },
        cell('name', 'Name', el('strong', { class: 'key-name' }, key.name || '(unnamed)')),
        cell('prefix', 'Prefix', el('code', { class: 'key-prefix' }, key.prefix ? key.prefix + '…' : '')),
        cell('created', 'Created', timeText(key.created_at, 'unknown')),
        cell('last-used', 'Last used', timeText(key.last_used_at, 'never')),
        cell('expires', 'Expires', expiresText(key.expires_at)),
        cell(
          'actions',
          'Actions',
          el(
            'button',
            { type: 'button', class: 'btn btn-danger-outline btn-small', dataset: { action: 'revoke-key' }, 'aria-label': 'Revoke key ' + (key.name || key.prefix || key.id) + ' of ' + username },
            'Revoke',
          ),
        ),
      ),
    );
    list.replaceChildren(
      el(
        'table',
        { class: 'table table-stack keys-table', id: 'user-keys-table', 'aria-labelledby': 'user-keys-title' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            el('th', { scope: 'col' }, 'Name'),
            el('th', { scope: 'col' }, 'Prefix'),
            el('th', { scope: 'col' }, 'Created'),
            el('th', { scope: 'col' }, 'Last used'),
            el('th', { scope: 'col' }, 'Expires'),
            el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Actions')),
          ),
        ),
        el('tbody', { id: 'user-keys-body' }, rows),
      ),
    );
  }

  async function loadKeys() {
    const username = keysState.username;
    const seq = ++keysState.seq;
    const dialog = $('user-keys-dialog');
    dialog.dataset.loaded = 'false';
    hideRevokeConfirm();
    CF.showError($('user-keys-error'), null);
    $('user-keys-list').setAttribute('aria-busy', 'true');
    try {
      const answer = await CF.api('GET', keysPath(username));
      if (seq !== keysState.seq) return;
      keysState.keys = (answer && Array.isArray(answer.keys) && answer.keys) || [];
      renderKeys();
    } catch (err) {
      if (seq !== keysState.seq) return;
      keysState.keys = [];
      $('user-keys-list').replaceChildren();
      const message = err.status === 404 ? 'The user ' + username + ' no longer exists.' : 'Could not load the API keys of ' + username + ': ' + err.message;
      CF.showError($('user-keys-error'), { message });
    } finally {
      if (seq === keysState.seq) {
        $('user-keys-list').removeAttribute('aria-busy');
        dialog.dataset.loaded = 'true';
      }
    }
  }

  function openKeys(username) {
    keysState.username = username;
    keysState.keys = [];
    const dialog = $('user-keys-dialog');
    dialog.returnValue = '';
    dialog.dataset.username = username;
    $('user-keys-title').textContent = 'API keys of ' + username;
    $('user-keys-list').replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    dialog.showModal();
    $('user-keys-close').focus();
    loadKeys();
  }

  function askRevoke(id) {
    const key = keyById(id);
    if (!key || keysState.busy) return;
    keysState.pending = String(key.id);
    $('revoke-key-text').replaceChildren(
      el('strong', {}, 'Revoke key ' + (key.name || key.prefix || key.id) + ' of ' + keysState.username + '?'),
      ' Programs that use it (' + (key.prefix ? key.prefix + '…' : 'this key') + ') stop working at once. This cannot be undone.',
    );
    $('revoke-key-confirm').hidden = false;
    $('revoke-key-no').focus();
  }

  function hideRevokeConfirm() {
    keysState.pending = null;
    $('revoke-key-confirm').hidden = true;
    $('revoke-key-text').replaceChildren();
  }

  function focusKeyRow(id, index) {
    const body = $('user-keys-body');
    let target = null;
    if (body) {
      const rows = Array.from(body.querySelectorAll('tr[data-key-id]'));
      const row = rows.find((r) => r.dataset.keyId === id) || rows[Math.min(index, rows.length - 1)] || null;
      if (row) target = row.querySelector('[data-action="revoke-key"]');
    }
    (target || $('user-keys-close')).focus();
  }

  async function revokeKey() {
    const id = keysState.pending;
    const key = id ? keyById(id) : null;
    if (!key || keysState.busy) return;
    const username = keysState.username;
    const name = key.name || key.prefix || key.id;
    const index = keysState.keys.indexOf(key);
    const button = $('revoke-key-yes');
    keysState.busy = true;
    button.setAttribute('aria-busy', 'true');
    button.setAttribute('aria-disabled', 'true');
    try {
      await CF.api('DELETE', keysPath(username, id));
      CF.toast('Key ' + name + ' of ' + username + ' revoked.', 'success');
    } catch (err) {
      if (err.status !== 404) {
        CF.toast('Could not revoke key ' + name + ' of ' + username + ': ' + err.message, 'error');
        return;
      }
      CF.toast('Key ' + name + ' of ' + username + ' was already revoked.', 'info');
    } finally {
      keysState.busy = false;
      button.removeAttribute('aria-busy');
      button.removeAttribute('aria-disabled');
    }
    if (!$('user-keys-dialog').open || keysState.username !== username) return;
    await loadKeys();
    if ($('user-keys-dialog').open && keysState.username === username) focusKeyRow(null, index);
  }

  function findUser(username) {
    return state.users.find((u) => u.username === username) || null;
  }

  function clearAddErrors() {
    for (const node of $('add-user-form').querySelectorAll('.field-error')) {
      node.textContent = '';
      node.hidden = true;
    }
    for (const node of $('add-user-form').querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
    CF.showError($('add-user-error'), null);
  }

  function addFieldError(key, message) {
    const box = $('err-new-' + key);
    const input = $('new-' + key);
    if (!box || !input) return false;
    box.textContent = message;
    box.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    return true;
  }

  async function addUser(event) {
    event.preventDefault();
    clearAddErrors();
    const body = {
      username: $('new-username').value.trim(),
      email: $('new-email').value.trim(),
      name: $('new-name').value.trim(),
      role: $('new-role').value,
    };
    const password = $('new-password').value;
    if (password) body.password = password;
    const missing = [];
    if (!body.username) missing.push(['username', 'Enter a username.']);
    if (!body.email) missing.push(['email', 'Enter an email address.']);
    else if (!/^[^\s@]+@[^\s@]+$/.test(body.email)) missing.push(['email', 'Enter a valid email address.']);
    if (!body.name) missing.push(['name', 'Enter the person\'s name.']);
    if (missing.length) {
      for (const [key, msg] of missing) addFieldError(key, msg);
      $('new-' + missing[0][0]).focus();
      return;
    }
    const button = $('add-user-submit');
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const user = await CF.api('POST', '/api/users', body);
      state.users.push(user && user.username ? user : Object.assign({ source: password ? 'local' : 'sso', disabled: false, access: accessFor(body.role) }, body));
      state.users.sort((a, b) => a.username.localeCompare(b.username));
      renderRows();
      $('add-user-form').reset();
      $('new-role').value = 'developer';
      CF.toast('User ' + (user && user.username ? user.username : body.username) + ' added.', 'success');
      $('new-username').focus();
    } catch (err) {
      let placed = false;
      for (const d of err.details || []) {
        const key = (d.pointer || '').split('/')[1];
        if (key && addFieldError(key, d.message)) placed = true;
      }
      if (!placed && err.status === 409) placed = addFieldError('username', err.message);
      CF.showError($('add-user-error'), { message: err.message, details: placed ? [] : err.details });
      const invalid = $('add-user-form').querySelector('[aria-invalid="true"]');
      if (invalid) invalid.focus();
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    const body = $('users-body');
    body.addEventListener('change', (event) => {
      const select = event.target.closest('select[data-action="role"]');
      if (!select) return;
      const tr = select.closest('tr');
      tr.querySelector('[data-action="apply-access"]').disabled = select.value === select.dataset.current;
    });
    body.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (!button || button.disabled) return;
      const tr = button.closest('tr');
      if (button.dataset.action === 'apply-access') applyAccess(tr, false);
      else if (button.dataset.action === 'toggle-disabled') toggleDisabled(tr, false);
      else if (button.dataset.action === 'keys') openKeys(tr.dataset.username);
    });
    $('disable-dialog').addEventListener('close', () => {
      const dialog = $('disable-dialog');
      const tr = rowOf(dialog.dataset.username || '');
      if (!tr) return;
      if (dialog.returnValue === 'confirm') toggleDisabled(tr, true);
      else {
        const toggle = tr.querySelector('[data-action="toggle-disabled"]');
        if (toggle) toggle.focus();
      }
    });
    $('user-keys-list').addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action="revoke-key"]');
      if (!button) return;
      const tr = button.closest('tr[data-key-id]');
      if (tr) askRevoke(tr.dataset.keyId);
    });
    $('revoke-key-yes').addEventListener('click', revokeKey);
    $('revoke-key-no').addEventListener('click', () => {
      const id = keysState.pending;
      hideRevokeConfirm();
      focusKeyRow(id, 0);
    });
    $('user-keys-dialog').addEventListener('cancel', (event) => {
      // Escape first closes the confirmation, then the dialog.
      if ($('revoke-key-confirm').hidden) return;
      event.preventDefault();
      const id = keysState.pending;
      hideRevokeConfirm();
      focusKeyRow(id, 0);
    });
    $('user-keys-dialog').addEventListener('close', () => {
      const username = keysState.username;
      keysState.seq += 1; // an answer still on its way is dropped
      keysState.username = null;
      hideRevokeConfirm();
      const tr = rowOf(username || '');
      const opener = tr && tr.querySelector('[data-action="keys"]');
      if (opener) opener.focus();
    });
    $('self-demote-dialog').addEventListener('close', () => {
      const dialog = $('self-demote-dialog');
      const tr = rowOf(dialog.dataset.username || '');
      if (!tr) return;
      if (dialog.returnValue === 'confirm') applyAccess(tr, true);
      else {
        const select = tr.querySelector('select[data-action="role"]');
        select.value = select.dataset.current;
        tr.querySelector('[data-action="apply-access"]').disabled = true;
        select.focus();
      }
    });
    $('user-filter').addEventListener('input', () => {
      state.filter = $('user-filter').value;
      renderRows();
    });
    $('add-user-form').addEventListener('submit', addUser);
  }

  async function start() {
    renderSkeleton();
    wire();
    const whoami = document.querySelector('.whoami');
    state.me = whoami ? whoami.textContent.trim() : null;
    try {
      const [list, me] = await Promise.all([CF.api('GET', '/api/users'), CF.api('GET', '/api/me').catch(() => null)]);
      if (me && me.username) state.me = me.username;
      state.users = ((list && list.users) || []).slice().sort((a, b) => a.username.localeCompare(b.username));
      renderRows();
    } catch (err) {
      CF.showError($('people-error'), { message: 'Could not load users: ' + err.message });
      $('users-body').replaceChildren();
    }
    app.dataset.ready = 'true';
  }

  start();
})();
