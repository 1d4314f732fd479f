// Settings → Single Sign-On page app. Renders everything inside `#app`; needs window.CF (app.js).
//
// Server: GET/PUT/DELETE /api/settings/sso, POST /api/settings/sso/test, POST /api/settings/sso/reload.
// `#app[data-redirect-uri]` is the redirect URI to show before the first GET answers.
//
// Stable selectors (tests and docs rely on them; add, do not rename):
//   #sso-status          status panel (data-provider-state="disabled|discovering|ready|unreachable")
//   #provider-state      provider state badge; #provider-detail its detail text
//   #config-generation   "generation N, loaded at …" text
//   #reload-from-file    button "Reload from file" (POST /api/settings/sso/reload)
//   #banner-file-error   .banner.banner-error when status.error (message, line/column, pointer)
//   #banner-git-tracked  .banner.banner-warning when status.git.tracked
//   #banner-read-only    .banner.banner-warning when the answer's setup_repo_writable is false (or
//                        a save/removal answered 409 setup_repo_read_only): the setup repository
//                        is read-only on this server, oidc.json is changed in its git. Then
//                        #sso-form[data-read-only="true"], every input/select of the form and the
//                        Show button are disabled, #save and #remove-sso are disabled; tabs,
//                        #test-connection, #reload-from-file and #discard keep working
//   #banner-replicas-differ  .banner.banner-warning when a replica has same_config: false; names
//                        them in #replicas-differ-list (li[data-replica-id=ID] > code)
//   #replicas            section "Replicas" (heading #replicas-title), shown only when the answer's
//                        replicas has more than one entry: #replicas-list (ul) of
//                        li.replica[data-replica-id=ID][data-this="true|false"]
//                        [data-same-config="true|false"], each with .replica-id, .replica-this
//                        badge "This replica" (this one only), .replica-version,
//                        time.replica-last-seen[datetime], .replica-hash (first 12 hex
//                        characters of its oidc.json's SHA-256, or "no oidc.json") and, when it
//                        differs, a .replica-differs badge
//   #redirect-uri        read-only input holding the redirect URI; #copy-redirect-uri its Copy button
//   #sso-tabs            [role=tablist]; tabs #tab-connection "Connection",
//                        #tab-provisioning "User Provisioning"; panels #panel-connection,
//                        #panel-provisioning
//   #sso-form            the form (both tabs); data-dirty="true|false"
//   Connection:   #sso-enabled (checkbox "Enable SSO"), #sso-provider (select "Identity provider":
//                 entra|okta|google|auth0|custom), #sso-tenant (tenant id / domain; its label
//                 changes with the provider; wrapper #field-tenant hidden for google/custom),
//                 #sso-client-id "Client ID", #sso-client-secret "Client Secret",
//                 #sso-issuer "Issuer URL", #sso-display-name "Display name", #sso-scopes "Scopes",
//                 #test-connection button "Test Connection", #test-results (list of
//                 li.check[data-check=NAME] with .check-ok / .check-fail),
//                 #test-summary (data-ok="true|false")
//   Provisioning: #sso-auto-provision (checkbox "Auto-provisioning"), radios name=default_role
//                 #role-viewer, #role-developer, #role-environment_admin, #role-server_admin,
//                 #sso-link-by-email (select "Link existing users by email": verified|never|
//                 trust_provider; hint #sso-link-by-email-hint; #link-by-email-warning shown only
//                 for trust_provider; sent as link_by_email only when not "verified", the default),
//                 #sso-allow-local (checkbox "Allow local login"), #local-auth-warning,
//                 #access-order (the order in which a sign-in is checked: an ol),
//                 section "Who may sign in" (#access-rules-title):
//                 #sso-allowed-email-domains (textarea "Allowed email domains": one per line or
//                 separated by commas), #sso-allowed-groups (textarea "Allowed groups": one per
//                 line), fieldset #required-claims (legend "Required claims"): #required-claims-list
//                 (ul) of li.rule-row[data-row=N] with input[data-field=claim], input[data-field=
//                 values] (comma separated), button[data-row-action=remove] ("Remove", aria-label
//                 "Remove required claim K") and its .field-error; #add-required-claim "Add
//                 required claim"; #required-claims-empty while there is no row;
//                 section "Access from the identity provider" (#access-mapping-title):
//                 fieldset #role-mapping (legend "Role mapping"): #role-mapping-list (ul) of
//                 li.rule-row[data-row=N] with input[data-field=group], select[data-field=role]
//                 ("" = none chosen, viewer|developer|environment_admin|server_admin),
//                 button[data-row-action=remove] (aria-label "Remove mapping K"), its .field-error;
//                 #add-role-mapping "Add mapping"; #role-mapping-empty while there is no row;
//                 #role-mapping-note (with a mapping, the provider manages SSO users' access);
//                 section "Where the claims are" (#claims-title): #sso-email-claim "Email claim",
//                 #sso-name-claim "Name claim", #sso-username-claim "Username claim",
//                 #sso-groups-claim "Groups claim" (placeholders: the defaults; empty or the
//                 default: left out of oidc.json);
//                 section "Check with my account" (#preview-title): #preview-sso button (a
//                 navigation to /auth/oidc/login?preview=1; disabled unless the saved
//                 configuration has SSO enabled and the provider is ready), #preview-sso-hint,
//                 #preview-sso-note (why it is disabled, or that unsaved changes are not used)
//                 Sent on every save: username_claim, required_claims, allowed_email_domains,
//                 allowed_groups, role_mapping as null when unset (the server leaves them out);
//                 email_claim, name_claim, groups_claim only when set to something else than
//                 their default.
//   Field errors: #err-<field> (.field-error) beside each field, fields get aria-invalid="true";
//                 #form-error holds errors without a field (pointer ""). Provisioning fields are
//                 also checked as you type. A 422 detail lands on its control: /allowed_email_domains/1
//                 on the textarea (naming the entry), /role_mapping/0/role on that row's select,
//                 /required_claims/<claim>/0 on that row's values (the rows counted as sent: the
//                 non-empty ones, in order); a whole list's problem on #err-required_claims or
//                 #err-role_mapping
//   Actions:      #save "Save", #discard "Discard changes", #remove-sso "Remove SSO"
//   Dialogs:      #remove-dialog (#remove-confirm "Remove SSO", #remove-cancel "Cancel"),
//                 #lockout-dialog (#lockout-message, #lockout-force "Save anyway",
//                 #lockout-cancel "Cancel")
//   Toasts:       #toast-region (from app.js) .toast-success "SSO settings saved" etc.
//   #recent-failures     section "Recent sign-in failures" (heading #recent-failures-title, note
//                        #recent-failures-note) from the GET answer's recent_failures, newest
//                        first: #recent-failures-list (ul) of li.failure[data-reference=SSO-…]
//                        [data-kind=transient|configuration|rejected|refused], each with
//                        time.failure-time[datetime], .failure-reference (the SSO-… code),
//                        .failure-kind badge ("Provider unreachable", "Configuration problem",
//                        "Answer rejected", "Refused by a rule"), .failure-cause and, only when
//                        the server gives one, .failure-hint; when there are none,
//                        #recent-failures-empty "No failed sign-ins since the server started."
//
// Behaviour: polls GET /api/settings/sso every 3 s while the page is visible and refreshes the
// status, banners, replicas and recent sign-in failures; when the form is not dirty it also
// refreshes the form, so an edit of oidc.json on disk shows up. Read-only mode follows the
// answers' setup_repo_writable; once a save or removal was answered 409 setup_repo_read_only it
// stays on until the page is loaded again.
(function () {
  'use strict';

  const CF = window.CF;
  const { el } = CF;
  const POLL_MS = 3000;

  const PROVIDERS = {
    entra: {
      label: 'Microsoft Entra ID (Azure AD)',
      template: 'https://login.microsoftonline.com/{tenant}/v2.0',
      tenantLabel: 'Directory (tenant) ID',
      tenantPlaceholder: '00000000-0000-0000-0000-000000000000',
      tenantHint: 'From the Overview page of your app registration in Microsoft Entra ID.',
      placeholder: '{tenant-id}',
      pattern: /^https:\/\/login\.microsoftonline\.com\/([^/?#]+)\/v2\.0\/?$/,
    },
    okta: {
      label: 'Okta',
      template: 'https://{tenant}/oauth2/default',
      tenantLabel: 'Okta domain',
      tenantPlaceholder: 'your-org.okta.com',
      tenantHint: 'Your Okta domain, without https://.',
      placeholder: '{your-okta-domain}',
      pattern: /^https:\/\/([^/?#]+)\/oauth2\/default\/?$/,
    },
    google: {
      label: 'Google Workspace',
      template: 'https://accounts.google.com',
      pattern: /^https:\/\/accounts\.google\.com\/?$/,
    },
    auth0: {
      label: 'Auth0',
      template: 'https://{tenant}/',
      tenantLabel: 'Auth0 domain',
      tenantPlaceholder: 'your-tenant.us.auth0.com',
      tenantHint: 'Your Auth0 tenant domain, without https://.',
      placeholder: '{your-auth0-domain}',
      pattern: /^https:\/\/([^/?#]+\.auth0\.com)\/$/,
    },
    custom: { label: 'Custom (any OpenID Connect provider)' },
  };

  const ROLES = [
    ['viewer', 'Viewer', 'Can see environments and their status, but cannot change anything.'],
    ['developer', 'Developer', 'Can use and work in all environments. The usual choice.'],
    ['environment_admin', 'Environment Admin', 'Can manage all environments, including their settings.'],
    ['server_admin', 'Server Admin', 'Full control of the server, including SSO settings and people. Grant with care.'],
  ];
  const LEGACY_ROLES = { manager: 'environment_admin', admin: 'server_admin' };

  const CHECKS = {
    discovery: {
      title: 'Discovery document',
      hint: 'Check the Issuer URL: CoderFlow fetches <issuer>/.well-known/openid-configuration. Make sure the URL is right and that this server can reach it (DNS, proxy, firewall).',
    },
    issuer: {
      title: 'Issuer matches',
      hint: 'The "issuer" in the discovery document must equal the Issuer URL exactly: same scheme, host, path and trailing slash. Copy it from the discovery document.',
    },
    jwks: {
      title: 'Signing keys (JWKS)',
      hint: 'The provider\'s jwks_uri must be reachable and list at least one RSA or EC signing key.',
    },
    signing: {
      title: 'ID token signatures',
      hint: 'Set the provider to sign ID tokens with RS256 (or another RS, PS, ES or EdDSA algorithm). HMAC (HS256) and unsigned tokens are refused.',
    },
    trust: {
      title: 'Trusted certificate authorities',
      hint: 'idp_ca_file names a PEM file of certificate authorities in the setup repository.',
    },
    code_flow: {
      title: 'Authorization code flow',
      hint: 'Register CoderFlow as a "Web" application (confidential client) so the provider supports response type "code".',
    },
    pkce_s256: {
      title: 'PKCE (S256)',
      hint: 'CoderFlow always uses PKCE with S256. Enable PKCE for this application at your provider.',
    },
    email: {
      title: 'Email scope and claim',
      hint: 'Add "email" to Scopes and make sure the provider returns the email claim (in Microsoft Entra ID, grant the email permission under API permissions).',
    },
    redirect_uri: {
      title: 'Redirect URI',
      hint: 'Register the redirect URI shown above at your provider exactly: scheme (http/https), host, port and path, with no trailing slash.',
    },
  };

  // recent_failures[].kind: the badge class and readable words.
  const FAILURE_KINDS = {
    transient: ['badge-warning', 'Provider unreachable'],
    configuration: ['badge-danger', 'Configuration problem'],
    rejected: ['badge-danger', 'Answer rejected'],
    refused: ['badge-muted', 'Refused by a rule'],
  };

  const FIELD_BY_KEY = {
    enabled: 'sso-enabled',
    display_name: 'sso-display-name',
    client_id: 'sso-client-id',
    client_secret: 'sso-client-secret',
    issuer: 'sso-issuer',
    scopes: 'sso-scopes',
    auto_provision: 'sso-auto-provision',
    default_role: 'role-viewer',
    allow_local_auth: 'sso-allow-local',
    link_by_email: 'sso-link-by-email',
    email_claim: 'sso-email-claim',
    name_claim: 'sso-name-claim',
    username_claim: 'sso-username-claim',
    groups_claim: 'sso-groups-claim',
    allowed_email_domains: 'sso-allowed-email-domains',
    allowed_groups: 'sso-allowed-groups',
    required_claims: 'required-claims',
    role_mapping: 'role-mapping',
  };
  const PROVISIONING_KEYS = [
    'auto_provision',
    'default_role',
    'allow_local_auth',
    'link_by_email',
    'email_claim',
    'name_claim',
    'username_claim',
    'groups_claim',
    'allowed_email_domains',
    'allowed_groups',
    'required_claims',
    'role_mapping',
  ];

  // Claim locations (contract section 8): key, input id, label, default, hint. Empty (or the
  // default) is left out of oidc.json; username_claim has no default (from the email).
  const CLAIM_FIELDS = [
    ['email_claim', 'sso-email-claim', 'Email claim', 'email', 'Where the user\'s email is. Default: email.'],
    ['name_claim', 'sso-name-claim', 'Name claim', 'name', 'Where the user\'s full name is. Default: name.'],
    ['username_claim', 'sso-username-claim', 'Username claim', '', 'Where a new user\'s username comes from, such as preferred_username (lower-cased; letters, digits, dots, hyphens and underscores kept). Empty: from the email, the part before the @.'],
    ['groups_claim', 'sso-groups-claim', 'Groups claim', 'groups', 'Where the user\'s groups (or app roles) are: a list of strings or one string. Default: groups. Microsoft Entra ID: groups (group object IDs) or roles (app roles); Keycloak: /realm_access/roles.'],
  ];
  const CLAIM_DEFAULTS = Object.fromEntries(CLAIM_FIELDS.map(([key, , , def]) => [key, def]));
  // The schema's rule for an entry of allowed_email_domains.
  const DOMAIN_RE = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

  // link_by_email values, their labels and what each means (contract section 8).
  const LINK_DEFAULT = 'verified';
  const LINK_BY_EMAIL = [
    ['verified', 'Only verified emails (recommended)', 'A first SSO login is linked to the existing user with the same email only when the provider says the email is verified (email_verified: true).'],
    ['never', 'Never', 'A first SSO login is never linked by email: when a user with that email exists, the login is refused ("Account not linked") and that user signs in with their password instead.'],
    ['trust_provider', 'Trust the provider, also unverified emails', 'Also links when the provider sends no email_verified at all, as Microsoft Entra ID does. An email the provider marks as unverified is still refused.'],
  ];

  const state = {
    data: null, // last GET/PUT/DELETE answer
    baseline: null, // serialised form state after the last render from the server
    busy: false, // a save/remove/reload/test request is in flight
    seq: 0, // bumped by every such request, so an older poll answer is dropped
    pollTimer: null,
    polling: false,
    tabs: null,
    formSignature: null, // configSignature() of the answer the form was last filled from
    serverChangedWhileDirty: false,
    readOnly: false, // the setup repository cannot be written: the form is disabled
    writeRefused: false, // a save or removal was answered 409 setup_repo_read_only
  };

  const app = document.getElementById('app');
  if (!app) return;
  const initialRedirect = app.getAttribute('data-redirect-uri') || '';

  // ---------------------------------------------------------------- rendering the skeleton

  function switchField(id, label, hint) {
    return el(
      'div',
      { class: 'field field-switch' },
      el(
        'label',
        { class: 'switch', for: id },
        el('input', { type: 'checkbox', id, role: 'switch', 'aria-describedby': hint ? id + '-hint' : null }),
        el('span', { class: 'switch-track', 'aria-hidden': 'true' }),
        el('span', { class: 'switch-label' }, label),
      ),
      hint ? el('p', { class: 'hint', id: id + '-hint' }, hint) : null,
      el('p', { class: 'field-error', id: 'err-' + keyOf(id), hidden: true }),
    );
  }

  function keyOf(id) {
    for (const [key, value] of Object.entries(FIELD_BY_KEY)) if (value === id) return key;
    return id;
  }

  function textField(id, key, label, attrs, hint) {
    const describedBy = [hint ? id + '-hint' : null, 'err-' + key].filter(Boolean).join(' ');
    return el(
      'div',
      { class: 'field', id: 'field-' + key },
      el('label', { for: id }, label),
      el('input', Object.assign({ id, name: key, type: 'text', 'aria-describedby': describedBy }, attrs || {})),
      hint ? el('p', { class: 'hint', id: id + '-hint' }, hint) : null,
      el('p', { class: 'field-error', id: 'err-' + key, hidden: true }),
    );
  }

  // ---------------------------------------------------------------- User Provisioning: who may
  // sign in, access from the provider, claim locations, Check with my account

  function listField(id, key, label, hint, placeholder) {
    return el(
      'div',
      { class: 'field', id: 'field-' + key },
      el('label', { for: id }, label),
      el('textarea', {
        id,
        name: key,
        class: 'list-input',
        rows: '3',
        autocomplete: 'off',
        spellcheck: 'false',
        autocapitalize: 'none',
        placeholder,
        'aria-describedby': id + '-hint err-' + key,
      }),
      el('p', { class: 'hint', id: id + '-hint' }, hint),
      el('p', { class: 'field-error', id: 'err-' + key, hidden: true }),
    );
  }

  function rowsField(id, key, legend, hint, empty, addId, addLabel) {
    return el(
      'fieldset',
      { class: 'field rows-field', id, 'aria-describedby': id + '-hint err-' + key },
      el('legend', {}, legend),
      el('p', { class: 'hint', id: id + '-hint' }, hint),
      el('p', { class: 'muted small rows-empty', id: id + '-empty' }, empty),
      el('ul', { class: 'rule-rows', id: id + '-list' }),
      el('div', { class: 'rows-actions' }, el('button', { type: 'button', class: 'btn btn-secondary btn-small', id: addId }, addLabel)),
      el('p', { class: 'field-error', id: 'err-' + key, hidden: true }),
    );
  }

  function accessRulesSection() {
    return el(
      'section',
      { class: 'settings-section stack-tight', 'aria-labelledby': 'access-rules-title' },
      el('h2', { class: 'section-title', id: 'access-rules-title' }, 'Who may sign in'),
      el(
        'div',
        { class: 'hint', id: 'access-order-intro' },
        el('p', {}, 'Leave these empty to let everyone your identity provider signs in use SSO. Each SSO sign-in is checked in this order; the first rule that refuses ends it:'),
        el(
          'ol',
          { class: 'hint-list check-order', id: 'access-order' },
          el('li', {}, el('strong', {}, 'Required claims: '), 'every listed claim must be there with one of its values.'),
          el('li', {}, el('strong', {}, 'Allowed email domains: '), 'the part of the email after its last @ must be one of them, exactly (sub.company.com is not company.com).'),
          el('li', {}, el('strong', {}, 'Groups claim: '), 'needed when Allowed groups or a Role mapping is set. A sign-in without it is refused ("Missing groups claim") and changes nothing: a missing groups claim never demotes anyone.'),
          el('li', {}, el('strong', {}, 'Allowed groups: '), 'the user must be in at least one of them.'),
          el('li', {}, el('strong', {}, 'Role mapping: '), 'gives the access (below).'),
        ),
        el('p', {}, 'A refused sign-in creates no user and no session. The person is told which rule refused them, never the allowed values; the audit trail records it too.'),
      ),
      listField(
        'sso-allowed-email-domains',
        'allowed_email_domains',
        'Allowed email domains',
        'One per line, or separated by commas, such as company.com. Empty: any domain.',
        'company.com',
      ),
      listField(
        'sso-allowed-groups',
        'allowed_groups',
        'Allowed groups',
        'One per line, as the groups claim names them (Microsoft Entra ID sends group object IDs, not names). Empty: no group needed.',
        'engineering',
      ),
      rowsField(
        'required-claims',
        'required_claims',
        'Required claims',
        'A claim and the values it may have, separated by commas; for a list claim, one of its items must match. For example hd = company.com (Google Workspace) or tid = your tenant ID (a multi-tenant Microsoft Entra ID app).',
        'None.',
        'add-required-claim',
        'Add required claim',
      ),
    );
  }

  function accessMappingSection() {
    return el(
      'section',
      { class: 'settings-section stack-tight', 'aria-labelledby': 'access-mapping-title' },
      el('h2', { class: 'section-title', id: 'access-mapping-title' }, 'Access from the identity provider'),
      rowsField(
        'role-mapping',
        'role_mapping',
        'Role mapping',
        'Members of a group get its role; a user in several mapped groups gets the highest one (Viewer < Developer < Environment Admin < Server Admin), and a user in none of them the default access above.',
        'None: access is given in People & Access.',
        'add-role-mapping',
        'Add mapping',
      ),
      el(
        'div',
        { class: 'alert alert-info', id: 'role-mapping-note', role: 'note' },
        el('strong', {}, 'With a role mapping, the identity provider manages access: '),
        'at every SSO sign-in, the first one too, the user\'s access is set from their groups. The access of users who sign in with SSO is then read-only in People & Access: change their groups at the identity provider, and their next sign-in applies them. A missing groups claim refuses the sign-in and never demotes anyone; a mapping that would leave no enabled Server Admin is not applied.',
      ),
    );
  }

  function claimsSection() {
    return el(
      'section',
      { class: 'settings-section stack-tight', 'aria-labelledby': 'claims-title' },
      el('h2', { class: 'section-title', id: 'claims-title' }, 'Where the claims are'),
      el(
        'p',
        { class: 'hint', id: 'claims-intro' },
        'A claim name as the identity provider sends it (it may contain dots or slashes, such as https://example.com/groups), or a JSON Pointer starting with / into nested claims, such as /realm_access/roles. Claims are read from the ID token, then from userinfo. Leave a field empty for its default.',
      ),
      el(
        'div',
        { class: 'grid-2' },
        CLAIM_FIELDS.map(([key, id, label, def, hint]) =>
          textField(id, key, label, { autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', maxlength: '256', placeholder: def || 'from the email' }, hint),
        ),
      ),
    );
  }

  function previewSection() {
    return el(
      'section',
      { class: 'settings-section stack-tight', id: 'preview-check', 'aria-labelledby': 'preview-title' },
      el('h2', { class: 'section-title', id: 'preview-title' }, 'Check with my account'),
      el(
        'p',
        { class: 'hint', id: 'preview-sso-hint' },
        'Sign in at the identity provider with your own account to see the claims it sends and what the saved configuration decides: allowed, or which rule refuses, and the username and access it would give. Nobody is signed in and nothing is created or changed. It uses the saved configuration: save your changes first.',
      ),
      el(
        'div',
        { class: 'toolbar' },
        el('button', { type: 'button', class: 'btn btn-secondary', id: 'preview-sso', 'aria-describedby': 'preview-sso-hint preview-sso-note', disabled: true }, 'Check with my account'),
        el('span', { class: 'muted', id: 'preview-sso-note', 'aria-live': 'polite' }),
      ),
    );
  }

  function renderSkeleton() {
    const providerSelect = el(
      'select',
      { id: 'sso-provider', name: 'provider', 'aria-describedby': 'sso-provider-hint' },
      Object.entries(PROVIDERS).map(([value, p]) => el('option', { value }, p.label)),
    );

    const connection = el(
      'section',
      { id: 'panel-connection', role: 'tabpanel', 'aria-labelledby': 'tab-connection', class: 'tabpanel stack' },
      switchField('sso-enabled', 'Enable SSO', 'Show the SSO button on the sign-in page and accept SSO logins.'),
      el(
        'div',
        { class: 'field' },
        el('label', { for: 'sso-provider' }, 'Identity provider'),
        providerSelect,
        el('p', { class: 'hint', id: 'sso-provider-hint' }, 'Fills in the Issuer URL. Choose Custom for any other OpenID Connect provider.'),
      ),
      el(
        'div',
        { class: 'field', id: 'field-tenant', hidden: true },
        el('label', { for: 'sso-tenant', id: 'sso-tenant-label' }, 'Directory (tenant) ID'),
        el('input', { id: 'sso-tenant', type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'sso-tenant-hint' }),
        el('p', { class: 'hint', id: 'sso-tenant-hint' }),
      ),
      el(
        'div',
        { class: 'grid-2' },
        textField('sso-client-id', 'client_id', 'Client ID', { autocomplete: 'off', spellcheck: 'false' }, 'The application (client) ID from your identity provider.'),
        el(
          'div',
          { class: 'field', id: 'field-client_secret' },
          el('label', { for: 'sso-client-secret' }, 'Client Secret'),
          el(
            'div',
            { class: 'input-group' },
            el('input', {
              id: 'sso-client-secret',
              name: 'client_secret',
              type: 'password',
              autocomplete: 'new-password',
              spellcheck: 'false',
              'aria-describedby': 'sso-client-secret-hint err-client_secret',
            }),
            el('button', { type: 'button', class: 'btn btn-secondary', id: 'toggle-secret', 'aria-controls': 'sso-client-secret', 'aria-pressed': 'false' }, 'Show'),
          ),
          el('p', { class: 'hint', id: 'sso-client-secret-hint' }),
          el('p', { class: 'field-error', id: 'err-client_secret', hidden: true }),
        ),
      ),
      textField(
        'sso-issuer',
        'issuer',
        'Issuer URL',
        { type: 'url', inputmode: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: 'https://idp.example.com' },
        'Used for discovery: <issuer>/.well-known/openid-configuration. Must match the provider\'s issuer exactly.',
      ),
      el(
        'div',
        { class: 'grid-2' },
        textField('sso-display-name', 'display_name', 'Display name', { placeholder: 'Sign in with SSO', maxlength: '100' }, 'Text on the SSO button, e.g. "Sign in with Microsoft".'),
        textField('sso-scopes', 'scopes', 'Scopes', { placeholder: 'openid profile email', autocomplete: 'off', spellcheck: 'false' }, 'Separated by spaces or commas. Must include openid; email is needed to match users.'),
      ),
      el(
        'div',
        { class: 'test-connection' },
        el(
          'div',
          { class: 'toolbar' },
          el('button', { type: 'button', class: 'btn btn-secondary', id: 'test-connection' }, 'Test Connection'),
          el('span', { class: 'muted', id: 'test-hint' }, 'Tests the values in this form (saved secret if left empty), without saving.'),
        ),
        el('div', { id: 'test-output', 'aria-live': 'polite' }),
      ),
    );

    const roleRadios = el(
      'fieldset',
      { class: 'field radio-cards', id: 'default-role', 'aria-describedby': 'err-default_role' },
      el('legend', {}, 'Default access for new users'),
      el('p', { class: 'hint' }, 'Given to users created by auto-provisioning. Environment roles apply to all environments; Server Admin applies to the whole server. Existing users are not changed; update them in People & Access.'),
      ROLES.map(([value, label, sentence]) =>
        el(
          'label',
          { class: 'radio-card', for: 'role-' + value },
          el('input', { type: 'radio', name: 'default_role', id: 'role-' + value, value, 'aria-labelledby': 'role-' + value + '-name', 'aria-describedby': 'role-' + value + '-desc' }),
          el('span', { class: 'radio-card-body' }, el('strong', { id: 'role-' + value + '-name' }, label), el('span', { class: 'muted', id: 'role-' + value + '-desc' }, sentence)),
        ),
      ),
      el('p', { class: 'field-error', id: 'err-default_role', hidden: true }),
    );

    const provisioning = el(
      'section',
      { id: 'panel-provisioning', role: 'tabpanel', 'aria-labelledby': 'tab-provisioning', class: 'tabpanel stack', hidden: true },
      switchField('sso-auto-provision', 'Auto-provisioning', 'Automatically create a CoderFlow account on a user\'s first SSO login. When off, create users (with a matching email) before they sign in.'),
      roleRadios,
      el(
        'div',
        { class: 'field', id: 'field-link_by_email' },
        el('label', { for: 'sso-link-by-email' }, 'Link existing users by email'),
        el(
          'select',
          { id: 'sso-link-by-email', name: 'link_by_email', 'aria-describedby': 'sso-link-by-email-hint err-link_by_email' },
          LINK_BY_EMAIL.map(([value, label]) => el('option', { value }, label)),
        ),
        el(
          'div',
          { class: 'hint', id: 'sso-link-by-email-hint' },
          el('p', {}, 'Whether a user\'s first SSO login may sign in as an existing CoderFlow user with the same email (for example one added in People & Access) and link to it. Logins already linked are not affected.'),
          el('ul', { class: 'hint-list' }, LINK_BY_EMAIL.map(([, label, meaning]) => el('li', {}, el('strong', {}, label + ': '), meaning))),
        ),
        el(
          'div',
          { 'aria-live': 'polite' },
          el(
            'div',
            { class: 'alert alert-warning', id: 'link-by-email-warning', hidden: true },
            el('strong', {}, 'Warning: '),
            'with "Trust the provider", anyone who can set an email address on their account at the identity provider takes over the CoderFlow user with that email, including a Server Admin. Choose it only for a provider where nobody but your administrators can set users\' email addresses.',
          ),
        ),
        el('p', { class: 'field-error', id: 'err-link_by_email', hidden: true }),
      ),
      switchField('sso-allow-local', 'Allow local login', 'Show the username and password form alongside the SSO button. Turn off for SSO-only mode.'),
      el(
        'div',
        { class: 'alert alert-warning', id: 'local-auth-warning', role: 'note' },
        el('strong', {}, 'Important: '),
        'Ensure at least one admin user can authenticate via SSO before disabling local auth. If locked out, re-enable local auth through the configuration file (set "allow_local_auth": true in oidc.json) and restart the server.',
      ),
      accessRulesSection(),
      accessMappingSection(),
      claimsSection(),
      previewSection(),
    );

    const form = el(
      'form',
      { id: 'sso-form', class: 'card settings-card', novalidate: true, 'aria-labelledby': 'sso-heading', dataset: { dirty: 'false' } },
      el(
        'div',
        { class: 'tabs', role: 'tablist', id: 'sso-tabs', 'aria-label': 'Single Sign-On settings' },
        el('button', { type: 'button', class: 'tab', role: 'tab', id: 'tab-connection', 'aria-controls': 'panel-connection', 'aria-selected': 'true' }, 'Connection'),
        el('button', { type: 'button', class: 'tab', role: 'tab', id: 'tab-provisioning', 'aria-controls': 'panel-provisioning', 'aria-selected': 'false' }, 'User Provisioning'),
      ),
      el('div', { id: 'form-error', hidden: true }),
      connection,
      provisioning,
      el(
        'div',
        { class: 'form-actions' },
        el('p', { class: 'muted dirty-note', id: 'dirty-note', hidden: true }, 'Unsaved changes'),
        el('button', { type: 'button', class: 'btn btn-danger-outline', id: 'remove-sso' }, 'Remove SSO'),
        el('span', { class: 'spacer' }),
        el('button', { type: 'button', class: 'btn btn-secondary', id: 'discard', disabled: true }, 'Discard changes'),
        el('button', { type: 'submit', class: 'btn btn-primary', id: 'save' }, 'Save'),
      ),
    );

    const removeDialog = el(
      'dialog',
      { id: 'remove-dialog', class: 'dialog', 'aria-labelledby': 'remove-dialog-title', 'aria-describedby': 'remove-dialog-text' },
      el(
        'form',
        { method: 'dialog', class: 'stack' },
        el('h2', { id: 'remove-dialog-title' }, 'Remove SSO?'),
        el(
          'div',
          { id: 'remove-dialog-text', class: 'stack-tight' },
          el('p', {}, 'This deletes oidc.json from the setup repository. The SSO button disappears from the sign-in page and local login is allowed again.'),
          el('p', { class: 'muted' }, 'Users who only sign in with SSO (no password) cannot sign in until SSO is configured again. Their accounts and access are kept.'),
        ),
        el(
          'div',
          { class: 'dialog-actions' },
          el('button', { type: 'submit', value: 'cancel', class: 'btn btn-secondary', id: 'remove-cancel', autofocus: true }, 'Cancel'),
          el('button', { type: 'submit', value: 'confirm', class: 'btn btn-danger', id: 'remove-confirm' }, 'Remove SSO'),
        ),
      ),
    );

    const lockoutDialog = el(
      'dialog',
      { id: 'lockout-dialog', class: 'dialog', 'aria-labelledby': 'lockout-dialog-title', 'aria-describedby': 'lockout-message' },
      el(
        'form',
        { method: 'dialog', class: 'stack' },
        el('h2', { id: 'lockout-dialog-title' }, 'Turn off local login?'),
        el(
          'div',
          { id: 'lockout-message', class: 'stack-tight' },
          el('p', { id: 'lockout-server-message' }),
          el(
            'p',
            { class: 'alert alert-warning' },
            el('strong', {}, 'Important: '),
            'Ensure at least one admin user can authenticate via SSO before disabling local auth. If locked out, re-enable local auth through the configuration file and restart the server.',
          ),
          el('p', { class: 'muted' }, 'To be safe, sign in once with SSO as a Server Admin first, then come back and turn off local login.'),
        ),
        el(
          'div',
          { class: 'dialog-actions' },
          el('button', { type: 'submit', value: 'cancel', class: 'btn btn-secondary', id: 'lockout-cancel', autofocus: true }, 'Cancel'),
          el('button', { type: 'submit', value: 'force', class: 'btn btn-danger', id: 'lockout-force' }, 'Save anyway'),
        ),
      ),
    );

    const status = el(
      'section',
      { class: 'card status-panel', id: 'sso-status', 'aria-labelledby': 'sso-status-title' },
      el('h2', { class: 'visually-hidden', id: 'sso-status-title' }, 'Status'),
      el('div', { id: 'sso-banners', 'aria-live': 'polite' }),
      el(
        'div',
        { class: 'status-row' },
        el(
          'div',
          { class: 'status-item' },
          el('span', { class: 'status-label' }, 'Identity provider'),
          el('span', { class: 'badge', id: 'provider-state' }, '…'),
          el('span', { class: 'muted', id: 'provider-detail' }),
        ),
        el('div', { class: 'status-item' }, el('span', { class: 'muted', id: 'config-generation' })),
        el('button', { type: 'button', class: 'btn btn-secondary btn-small', id: 'reload-from-file' }, 'Reload from file'),
      ),
      el(
        'div',
        { class: 'field redirect-field' },
        el('label', { for: 'redirect-uri' }, 'Redirect URI to register at your identity provider'),
        el(
          'div',
          { class: 'input-group' },
          el('input', { id: 'redirect-uri', type: 'text', readonly: true, value: initialRedirect, class: 'mono', 'aria-describedby': 'redirect-uri-hint' }),
          el('button', { type: 'button', class: 'btn btn-secondary', id: 'copy-redirect-uri', 'data-copy': initialRedirect }, 'Copy'),
        ),
        el('p', { class: 'hint', id: 'redirect-uri-hint' }, 'Add this exact URL (a "Web" redirect URI) to the application at your identity provider.'),
      ),
    );

    // Shown only with more than one replica (renderReplicas).
    const replicas = el(
      'section',
      { class: 'card stack-tight', id: 'replicas', 'aria-labelledby': 'replicas-title', hidden: true },
      el('h2', { id: 'replicas-title' }, 'Replicas'),
      el(
        'p',
        { class: 'hint', id: 'replicas-note' },
        'The servers sharing this database, seen in the last 30 seconds. Each one reads oidc.json from its own setup repository; the hash tells whether their files are the same.',
      ),
      el('div', { id: 'replicas-body' }),
    );

    const failures = el(
      'section',
      { class: 'card stack-tight', id: 'recent-failures', 'aria-labelledby': 'recent-failures-title' },
      el('h2', { id: 'recent-failures-title' }, 'Recent sign-in failures'),
      el(
        'p',
        { class: 'hint', id: 'recent-failures-note' },
        'When an SSO sign-in fails, the person signing in is shown a reference such as SSO-7K3F9Q: find it here with the cause. Kept in memory for the last 20 failures, newest first; a restart of the server empties the list.',
      ),
      el('div', { id: 'recent-failures-body' }),
    );

    app.replaceChildren(
      el(
        'div',
        { class: 'page-head' },
        el('h1', { id: 'sso-heading' }, 'Single Sign-On'),
        el('p', { class: 'lead' }, 'Let people sign in with your organisation\'s OpenID Connect identity provider. Saving writes oidc.json in the setup repository and applies it immediately.'),
      ),
      el('div', { id: 'load-error', hidden: true }),
      status,
      replicas,
      form,
      failures,
      removeDialog,
      lockoutDialog,
    );
    state.tabs = CF.initTabs(document.getElementById('sso-tabs'));
  }

  // ---------------------------------------------------------------- form <-> values

  const $ = (id) => document.getElementById(id);

  function detectProvider(issuer) {
    issuer = (issuer || '').trim();
    for (const [key, p] of Object.entries(PROVIDERS)) {
      if (!p.pattern) continue;
      const m = issuer.match(p.pattern);
      if (m) return { provider: key, tenant: m[1] || '' };
    }
    return { provider: 'custom', tenant: '' };
  }

  function issuerFor(provider, tenant) {
    const p = PROVIDERS[provider];
    if (!p || !p.template) return null;
    const t = (tenant || '').trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    return p.template.replace('{tenant}', t || p.placeholder || '');
  }

  function applyProviderUi(provider) {
    const p = PROVIDERS[provider] || PROVIDERS.custom;
    const hasTenant = Boolean(p.tenantLabel);
    $('field-tenant').hidden = !hasTenant;
    if (hasTenant) {
      $('sso-tenant-label').textContent = p.tenantLabel;
      $('sso-tenant').placeholder = p.tenantPlaceholder || '';
      $('sso-tenant-hint').textContent = p.tenantHint || '';
    }
    $('sso-issuer').readOnly = false;
  }

  function parseScopes(text) {
    const seen = new Set();
    const out = [];
    for (const s of (text || '').split(/[\s,]+/)) {
      if (s && !seen.has(s)) {
        seen.add(s);
        out.push(s);
      }
    }
    return out;
  }

  function setValue(id, value) {
    const node = $(id);
    if (!node) return;
    if (node.type === 'checkbox') {
      if (node.checked !== Boolean(value)) node.checked = Boolean(value);
    } else if (node.value !== value) {
      node.value = value;
    }
  }

  function fillForm(data) {
    const c = data.config || {};
    const has = Boolean(data.config);
    setValue('sso-enabled', has ? c.enabled !== false : false);
    const issuer = c.issuer || '';
    const detected = issuer ? detectProvider(issuer) : { provider: 'custom', tenant: '' };
    setValue('sso-provider', detected.provider);
    setValue('sso-tenant', detected.tenant);
    applyProviderUi(detected.provider);
    setValue('sso-client-id', c.client_id || '');
    setValue('sso-client-secret', '');
    setValue('sso-issuer', issuer);
    setValue('sso-display-name', c.display_name || '');
    setValue('sso-scopes', Array.isArray(c.scopes) ? c.scopes.join(' ') : has ? '' : 'openid profile email');
    setValue('sso-auto-provision', has ? c.auto_provision !== false : true);
    let role = c.default_role || 'developer';
    role = LEGACY_ROLES[role] || role;
    for (const [value] of ROLES) {
      const radio = $('role-' + value);
      const on = value === role;
      if (radio.checked !== on) radio.checked = on;
    }
    setValue('sso-allow-local', has ? c.allow_local_auth !== false : true);
    const link = LINK_BY_EMAIL.some(([value]) => value === c.link_by_email) ? c.link_by_email : LINK_DEFAULT;
    setValue('sso-link-by-email', link);
    fillProvisioning(c);
    updateSecretPlaceholder(data);
    updateLocalWarning();
    updateLinkWarning();
    $('remove-sso').disabled = !has || state.readOnly;
    clearFieldErrors();
    state.baseline = serialiseForm();
    state.formSignature = configSignature(data);
    updateDirty();
  }

  function updateSecretPlaceholder(data) {
    const input = $('sso-client-secret');
    const set = Boolean(data && data.client_secret_set);
    input.placeholder = set ? '•••••• (unchanged)' : '';
    $('sso-client-secret-hint').textContent = set
      ? 'A secret is saved. Leave empty to keep it; type a new one to replace it.'
      : 'The client secret value from your identity provider. It is stored in oidc.json, which git ignores.';
  }

  function updateLocalWarning() {
    const allow = $('sso-allow-local').checked;
    $('local-auth-warning').classList.toggle('is-emphasised', !allow);
  }

  function updateLinkWarning() {
    const trusting = $('sso-link-by-email').value === 'trust_provider';
    $('link-by-email-warning').hidden = !trusting;
    // A hidden warning would still be read out as part of the description: only when shown.
    $('sso-link-by-email').setAttribute('aria-describedby', ['sso-link-by-email-hint', trusting ? 'link-by-email-warning' : null, 'err-link_by_email'].filter(Boolean).join(' '));
  }

  // ---------------------------------------------------------------- User Provisioning values

  // Rows of required claims and of the role mapping.
  const ROW_KINDS = {
    required_claims: { list: 'required-claims-list', empty: 'required-claims-empty', add: 'add-required-claim', noun: 'required claim', prefix: 'required-claim-' },
    role_mapping: { list: 'role-mapping-list', empty: 'role-mapping-empty', add: 'add-role-mapping', noun: 'mapping', prefix: 'role-mapping-' },
  };
  let rowSeq = 0;

  function ruleRow(kind, values) {
    const n = ++rowSeq;
    const base = ROW_KINDS[kind].prefix + n;
    const errId = 'err-' + base;
    const disabled = state.readOnly;
    const label = (field, text) => el('label', { for: base + '-' + field }, text, el('span', { class: 'visually-hidden row-number' }));
    const input = (field, attrs) =>
      el(
        'input',
        Object.assign(
          { id: base + '-' + field, type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', dataset: { field }, 'aria-describedby': errId, disabled },
          attrs,
        ),
      );
    let first;
    let second;
    if (kind === 'required_claims') {
      first = el('div', { class: 'field' }, label('claim', 'Claim'), input('claim', { value: values.claim || '', placeholder: 'hd', maxlength: '256' }));
      second = el(
        'div',
        { class: 'field' },
        label('values', 'Allowed values'),
        input('values', { value: (values.values || []).join(', '), placeholder: 'company.com, example.org' }),
      );
    } else {
      let role = values.role || '';
      role = LEGACY_ROLES[role] || role;
      const known = !role || ROLES.some(([value]) => value === role);
      const select = el(
        'select',
        { id: base + '-role', dataset: { field: 'role' }, 'aria-describedby': errId, disabled },
        el('option', { value: '' }, 'Choose a role'),
        ROLES.map(([value, text]) => el('option', { value }, text)),
        // A role this page does not know (should the server ever answer one) is kept, not lost.
        known ? null : el('option', { value: role }, role),
      );
      select.value = role;
      first = el('div', { class: 'field' }, label('group', 'Group'), input('group', { value: values.group || '', placeholder: 'engineering', maxlength: '1024' }));
      second = el('div', { class: 'field' }, label('role', 'Role'), select);
    }
    return el(
      'li',
      { class: 'rule-row', dataset: { row: String(n), kind } },
      first,
      second,
      el('button', { type: 'button', class: 'btn btn-secondary btn-small', dataset: { rowAction: 'remove' }, disabled }, 'Remove'),
      el('p', { class: 'field-error', id: errId, hidden: true }),
    );
  }

  function rowsOf(kind) {
    return Array.from($(ROW_KINDS[kind].list).querySelectorAll('li.rule-row'));
  }

  // Labels and buttons say which row they belong to ("Remove mapping 2").
  function numberRows(kind) {
    const k = ROW_KINDS[kind];
    const rows = rowsOf(kind);
    rows.forEach((row, i) => {
      for (const span of row.querySelectorAll('.row-number')) span.textContent = ', ' + k.noun + ' ' + (i + 1);
      row.querySelector('[data-row-action="remove"]').setAttribute('aria-label', 'Remove ' + k.noun + ' ' + (i + 1));
    });
    $(k.empty).hidden = rows.length > 0;
  }

  function setRows(kind, items) {
    $(ROW_KINDS[kind].list).replaceChildren(...items.map((item) => ruleRow(kind, item)));
    numberRows(kind);
  }

  function addRow(kind) {
    if (state.readOnly) return;
    const row = ruleRow(kind, {});
    $(ROW_KINDS[kind].list).appendChild(row);
    numberRows(kind);
    row.querySelector('input').focus();
    updateDirty();
  }

  function removeRow(row) {
    const kind = row.dataset.kind;
    const rows = rowsOf(kind);
    const i = rows.indexOf(row);
    row.remove();
    numberRows(kind);
    const left = rowsOf(kind);
    const next = left[Math.min(i, left.length - 1)];
    (next ? next.querySelector('[data-row-action="remove"]') : $(ROW_KINDS[kind].add)).focus();
    validateLive(kind);
    updateDirty();
  }

  function rowData(row) {
    const value = (field) => {
      const node = row.querySelector('[data-field="' + field + '"]');
      return node ? node.value : '';
    };
    if (row.dataset.kind === 'required_claims') {
      const valuesText = value('values');
      return {
        claim: value('claim').trim(),
        valuesText,
        values: valuesText.split(',').map((v) => v.trim()).filter(Boolean),
      };
    }
    return { group: value('group').trim(), role: value('role') };
  }

  function isBlankRow(row) {
    const d = rowData(row);
    return row.dataset.kind === 'required_claims' ? !d.claim && !d.valuesText.trim() : !d.group && !d.role;
  }

  // The rows a save sends, in order: the server's /role_mapping/<i> counts these.
  function sentRows(kind) {
    return rowsOf(kind).filter((row) => !isBlankRow(row));
  }

  function unique(items, fold) {
    const seen = new Set();
    return items.filter((item) => {
      const k = fold ? fold(item) : item;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }

  // Domains: one per line or separated by commas (a domain has neither).
  function parseDomains(text) {
    return unique(
      (text || '').split(/[\n,]+/).map((d) => d.trim()).filter(Boolean),
      (d) => d.toLowerCase(),
    );
  }

  // Groups: one per line (a group name, such as an LDAP DN, may contain commas).
  function parseGroups(text) {
    return unique((text || '').split('\n').map((g) => g.trim()).filter(Boolean));
  }

  function claimValue(key) {
    const id = FIELD_BY_KEY[key];
    return $(id).value.trim();
  }

  // The provisioning part of oidc.json. The optional lists and username_claim are sent as null
  // when unset (the server leaves them out of the file); a claim location with its default value
  // is not sent, so a file in the guide's form stays so.
  function provisioningPayload(payload) {
    for (const [key, , , def] of CLAIM_FIELDS) {
      const value = claimValue(key);
      if (key === 'username_claim') payload.username_claim = value || null;
      else if (value && value !== def) payload[key] = value;
    }
    const domains = parseDomains($('sso-allowed-email-domains').value);
    payload.allowed_email_domains = domains.length ? domains : null;
    const groups = parseGroups($('sso-allowed-groups').value);
    payload.allowed_groups = groups.length ? groups : null;
    const claims = new Map();
    for (const row of sentRows('required_claims')) {
      const d = rowData(row);
      if (!claims.has(d.claim)) claims.set(d.claim, d.values);
    }
    payload.required_claims = claims.size ? Object.fromEntries(claims) : null;
    const mapping = sentRows('role_mapping').map((row) => {
      const d = rowData(row);
      return { group: d.group, role: d.role };
    });
    payload.role_mapping = mapping.length ? mapping : null;
    return payload;
  }

  function fillProvisioning(c) {
    for (const [key, id, , def] of CLAIM_FIELDS) {
      const value = typeof c[key] === 'string' ? c[key] : '';
      setValue(id, value === def ? '' : value);
    }
    setValue('sso-allowed-email-domains', Array.isArray(c.allowed_email_domains) ? c.allowed_email_domains.map(String).join('\n') : '');
    setValue('sso-allowed-groups', Array.isArray(c.allowed_groups) ? c.allowed_groups.map(String).join('\n') : '');
    const required = c.required_claims && typeof c.required_claims === 'object' && !Array.isArray(c.required_claims) ? c.required_claims : {};
    setRows(
      'required_claims',
      Object.entries(required).map(([claim, values]) => ({ claim, values: Array.isArray(values) ? values.map(String) : [] })),
    );
    const mapping = Array.isArray(c.role_mapping) ? c.role_mapping.filter((m) => m && typeof m === 'object') : [];
    setRows(
      'role_mapping',
      mapping.map((m) => ({ group: m.group === undefined || m.group === null ? '' : String(m.group), role: m.role ? String(m.role) : '' })),
    );
  }

  // What a claim location must look like; null when fine (or empty).
  function claimProblem(value) {
    if (!value) return null;
    if (value.length > 256) return 'A claim location has at most 256 characters.';
    if (value.startsWith('/')) {
      if (value === '/') return 'Add the claim\'s name after the /, such as /realm_access/roles.';
      if (/~(?![01])/.test(value)) return 'In a JSON Pointer, write ~0 for ~ and ~1 for / inside a name.';
      if (value.endsWith('/')) return 'Remove the / at the end: a JSON Pointer ends with the claim\'s name, such as /realm_access/roles.';
      return null;
    }
    // A nested path without the leading /: "realm_access/roles". A claim name with a slash is a
    // namespace URL ("https://example.com/groups"), which has a colon.
    if (value.includes('/') && !value.includes(':')) {
      return 'To reach a nested claim, write a JSON Pointer starting with /, such as /' + value.replace(/^\/+/, '') + '.';
    }
    return null;
  }

  function domainProblem(domain) {
    const quoted = '"' + domain + '"';
    if (domain.includes('@')) {
      const after = domain.slice(domain.lastIndexOf('@') + 1);
      return quoted + ' is not a domain: enter only the part after the @' + (after ? ', ' + after : '') + '.';
    }
    if (/\s/.test(domain)) return quoted + ' contains a space: put one domain per line, or separate them with commas.';
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(domain) || domain.includes('/')) return quoted + ' is not a domain: enter only the domain, without https:// or a path.';
    if (domain.startsWith('*')) return quoted + ': wildcards are not supported; list every domain exactly (sub.company.com is not company.com).';
    if (domain.length > 253 || !DOMAIN_RE.test(domain)) return quoted + ' is not a domain: use letters, digits, hyphens and dots, such as company.com.';
    return null;
  }

  // The User Provisioning checks the browser can make: [{key, message, input, box}]. With
  // `complete` (saving), a row with only one of its two fields filled is a problem too; as you
  // type, only once the focus has left that row.
  function provisioningProblems(complete) {
    const problems = [];
    const add = (key, message, input, box) => problems.push({ key, pointer: '/' + key, message, input: input || $(FIELD_BY_KEY[key]), box: box || $('err-' + key) });
    for (const [key, id] of CLAIM_FIELDS) {
      const raw = $(id).value;
      if (raw && !raw.trim()) add(key, 'Enter a claim, or leave the field empty for the default.');
      else {
        const problem = claimProblem(raw.trim());
        if (problem) add(key, problem);
      }
    }
    for (const domain of parseDomains($('sso-allowed-email-domains').value)) {
      const problem = domainProblem(domain);
      if (problem) add('allowed_email_domains', problem);
    }
    for (const group of parseGroups($('sso-allowed-groups').value)) {
      if (group.length > 1024) add('allowed_groups', 'A group has at most 1024 characters.');
    }
    const seen = new Map();
    rowsOf('required_claims').forEach((row, i) => {
      if (isBlankRow(row)) return;
      const d = rowData(row);
      const box = row.querySelector('.field-error');
      const claimInput = row.querySelector('[data-field="claim"]');
      const valuesInput = row.querySelector('[data-field="values"]');
      const touched = complete || row.dataset.touched === 'true';
      if (!d.claim) {
        if (touched) add('required_claims', 'Enter the claim these values are for.', claimInput, box);
      } else {
        const problem = claimProblem(d.claim);
        if (problem) add('required_claims', problem, claimInput, box);
        else if (seen.has(d.claim)) add('required_claims', 'This claim is already required claim ' + seen.get(d.claim) + ': put all its values there.', claimInput, box);
        else seen.set(d.claim, i + 1);
      }
      if (!d.values.length && touched) add('required_claims', 'Enter at least one allowed value; separate several with commas.', valuesInput, box);
    });
    rowsOf('role_mapping').forEach((row) => {
      if (isBlankRow(row)) return;
      const d = rowData(row);
      const box = row.querySelector('.field-error');
      const touched = complete || row.dataset.touched === 'true';
      if (!d.group && touched) add('role_mapping', 'Enter the group, as the groups claim names it.', row.querySelector('[data-field="group"]'), box);
      if (!d.role && touched) add('role_mapping', 'Choose the role members of this group get.', row.querySelector('[data-field="role"]'), box);
    });
    return problems;
  }

  function markProblem(box, input, message) {
    if (!box) return false;
    box.textContent = box.textContent ? box.textContent + ' ' + message : message;
    box.hidden = false;
    if (input) input.setAttribute('aria-invalid', 'true');
    return true;
  }

  // The key whose checks an edit of `target` reruns (User Provisioning only).
  function liveKeyOf(target) {
    const row = target && target.closest ? target.closest('li.rule-row') : null;
    if (row) return row.dataset.kind;
    const key = target && target.id ? keyOf(target.id) : null;
    return ['email_claim', 'name_claim', 'username_claim', 'groups_claim', 'allowed_email_domains', 'allowed_groups'].includes(key) ? key : null;
  }

  // Reruns the checks of one field (or one kind of rows) and shows their messages beside it.
  function validateLive(key) {
    const boxes = [$('err-' + key)];
    const inputs = [$(FIELD_BY_KEY[key])];
    if (ROW_KINDS[key]) {
      for (const row of rowsOf(key)) {
        boxes.push(row.querySelector('.field-error'));
        inputs.push(...row.querySelectorAll('[data-field]'));
      }
    }
    for (const box of boxes) {
      if (!box) continue;
      box.textContent = '';
      box.hidden = true;
    }
    for (const input of inputs) if (input) input.removeAttribute('aria-invalid');
    for (const p of provisioningProblems(false)) if (p.key === key) markProblem(p.box, p.input, p.message);
  }

  function updatePreview() {
    const button = $('preview-sso');
    if (!button) return;
    const data = state.data;
    const config = data && data.config;
    const providerState = data && data.status && data.status.provider ? data.status.provider.state : '';
    let note = '';
    let ready = false;
    if (!config) note = 'Available once SSO is configured and saved.';
    else if (config.enabled === false) note = 'Available once Enable SSO is on and saved.';
    else if (providerState !== 'ready') note = 'Available once the identity provider is ready.';
    else {
      ready = true;
      if (isDirty()) note = 'You have unsaved changes: the check uses the saved configuration.';
    }
    if (button.disabled === ready) button.disabled = !ready;
    const noteNode = $('preview-sso-note');
    if (noteNode.textContent !== note) noteNode.textContent = note;
  }

  function selectedRole() {
    const checked = app.querySelector('input[name="default_role"]:checked');
    return checked ? checked.value : 'developer';
  }

  // The oidc.json object the form describes. The secret is omitted when empty (= unchanged).
  function formPayload() {
    const payload = {
      enabled: $('sso-enabled').checked,
      client_id: $('sso-client-id').value.trim(),
      issuer: $('sso-issuer').value.trim(),
      auto_provision: $('sso-auto-provision').checked,
      default_role: selectedRole(),
      allow_local_auth: $('sso-allow-local').checked,
    };
    const displayName = $('sso-display-name').value.trim();
    if (displayName) payload.display_name = displayName;
    const secret = $('sso-client-secret').value;
    if (secret) payload.client_secret = secret;
    const scopes = parseScopes($('sso-scopes').value);
    if (scopes.length) payload.scopes = scopes;
    // Only a choice other than the default is written, so a file in the guide's form stays so.
    const link = $('sso-link-by-email').value;
    if (link && link !== LINK_DEFAULT) payload.link_by_email = link;
    return provisioningPayload(payload);
  }

  function serialiseForm() {
    const p = formPayload();
    p._provider = $('sso-provider').value;
    p._tenant = $('sso-tenant').value;
    p._scopes = $('sso-scopes').value;
    // As typed, so that an unfinished row or list entry counts as a change too.
    p._domains = $('sso-allowed-email-domains').value;
    p._groups = $('sso-allowed-groups').value;
    p._rows = Object.keys(ROW_KINDS).map((kind) => rowsOf(kind).map((row) => Array.from(row.querySelectorAll('[data-field]'), (n) => n.value)));
    return JSON.stringify(p);
  }

  function isDirty() {
    return state.baseline !== null && serialiseForm() !== state.baseline;
  }

  function updateDirty() {
    const dirty = isDirty();
    const form = $('sso-form');
    form.dataset.dirty = dirty ? 'true' : 'false';
    $('dirty-note').hidden = !dirty;
    $('discard').disabled = !dirty;
    if (!dirty) state.serverChangedWhileDirty = false;
    $('dirty-note').textContent = state.serverChangedWhileDirty
      ? 'Unsaved changes. The configuration on the server changed meanwhile; Discard changes to load it.'
      : 'Unsaved changes';
    updatePreview();
  }

  // ---------------------------------------------------------------- errors beside fields

  function fieldKeyForPointer(pointer, message) {
    if (pointer) {
      const key = pointer.split('/')[1];
      if (key && FIELD_BY_KEY[key]) return key;
      return null;
    }
    // Whole-document problems: "\"client_secret\" is a required property" names the field.
    const m = /["'`]([a-z_]+)["'`]/.exec(message || '');
    if (m && FIELD_BY_KEY[m[1]]) return m[1];
    return null;
  }

  function clearFieldErrors() {
    for (const node of app.querySelectorAll('.field-error')) {
      node.textContent = '';
      node.hidden = true;
    }
    for (const node of app.querySelectorAll('[aria-invalid="true"]')) node.removeAttribute('aria-invalid');
    CF.showError($('form-error'), null);
  }

  function unescapeToken(token) {
    return token.replace(/~1/g, '/').replace(/~0/g, '~');
  }

  // Where a problem the server (or this page) reports goes: {key, box, input, focus, prefix}.
  // Pointers into the lists and rows of User Provisioning land on their entry.
  function placeOf(pointer, message) {
    const key = fieldKeyForPointer(pointer, message);
    if (!key) return null;
    const input = $(FIELD_BY_KEY[key]);
    const place = { key, box: $('err-' + key), input, focus: input, prefix: '' };
    const tokens = (pointer || '').split('/').slice(2).map(unescapeToken);
    if (key === 'default_role') {
      place.input = $('default-role');
      place.focus = $('role-' + selectedRole());
    } else if (key === 'allowed_email_domains' || key === 'allowed_groups') {
      const list = key === 'allowed_email_domains' ? parseDomains(input.value) : parseGroups(input.value);
      const entry = /^\d+$/.test(tokens[0] || '') ? list[Number(tokens[0])] : undefined;
      if (entry !== undefined) place.prefix = '"' + entry + '": ';
    } else if (ROW_KINDS[key]) {
      const rows = sentRows(key);
      let row = null;
      let field;
      if (key === 'role_mapping') {
        if (/^\d+$/.test(tokens[0] || '')) row = rows[Number(tokens[0])] || null;
        const text = String(message || '');
        field = tokens[1] === 'role' || (!tokens[1] && /\brole\b/.test(text) && !/\bgroup\b/.test(text)) ? 'role' : 'group';
      } else {
        if (tokens.length) row = rows.find((r) => rowData(r).claim === tokens[0]) || null;
        field = 'values';
      }
      if (row) {
        place.box = row.querySelector('.field-error');
        place.input = place.focus = row.querySelector('[data-field="' + field + '"]');
      } else {
        // The list as a whole: the fieldset is marked, the focus goes to its first field.
        const first = rowsOf(key)[0];
        place.focus = first ? first.querySelector('[data-field]') : $(ROW_KINDS[key].add);
      }
    }
    return place;
  }

  function tabOf(key) {
    return PROVISIONING_KEYS.includes(key) ? 'tab-provisioning' : 'tab-connection';
  }

  // details: the server's [{pointer, message}], or this page's problems (which name their box
  // and input already).
  function showValidationErrors(err) {
    clearFieldErrors();
    const details = err.details && err.details.length ? err.details : [{ pointer: '', message: err.message }];
    const unplaced = [];
    let first = null;
    for (const d of details) {
      const place = d.box ? { key: d.key, box: d.box, input: d.input, focus: d.input, prefix: '' } : placeOf(d.pointer || '', d.message);
      if (place && markProblem(place.box, place.input, place.prefix + (d.message || 'Invalid value'))) {
        if (!first) first = place;
      } else {
        unplaced.push({ pointer: d.pointer || '', message: d.message || '' });
      }
    }
    let message = (err.message || 'The configuration is invalid').trim();
    if (!/[.!?:]$/.test(message)) message += '.';
    const summary = first ? message + ' Fix the highlighted fields.' : message;
    CF.showError($('form-error'), { message: summary, details: unplaced });
    if (first) {
      state.tabs.select(tabOf(first.key));
      if (first.focus) first.focus.focus();
    } else {
      $('form-error').scrollIntoView({ block: 'nearest' });
    }
  }

  // Checks the browser can make before asking the server.
  function localProblems(payload) {
    const problems = [];
    if (!payload.client_id) problems.push({ pointer: '/client_id', message: 'Enter the client ID from your identity provider.' });
    if (!payload.issuer) problems.push({ pointer: '/issuer', message: 'Enter the issuer URL.' });
    else if (/\{[^}]*\}/.test(payload.issuer)) {
      const label = $('field-tenant').hidden ? 'the placeholder' : $('sso-tenant-label').textContent;
      problems.push({ pointer: '/issuer', message: 'Replace the {…} placeholder: fill in ' + label + '.' });
    }
    if (!payload.client_secret) {
      const saved = state.data && state.data.config;
      const secretSaved = Boolean(state.data && state.data.client_secret_set);
      // The saved secret goes only to the provider it was saved for (the server refuses too).
      const sameProvider = saved && payload.issuer === saved.issuer && payload.client_id === saved.client_id;
      if (!secretSaved) {
        problems.push({ pointer: '/client_secret', message: 'Enter the client secret from your identity provider.' });
      } else if (!sameProvider) {
        problems.push({ pointer: '/client_secret', message: 'Enter the client secret again: the issuer or client ID changed, and the saved secret is only ever sent to the provider it was saved for.' });
      }
    }
    if (payload.scopes && !payload.scopes.includes('openid')) {
      problems.push({ pointer: '/scopes', message: 'Scopes must include openid.' });
    }
    problems.push(...provisioningProblems(true));
    return problems;
  }

  // ---------------------------------------------------------------- status and banners

  const STATE_BADGE = {
    disabled: ['badge-muted', 'Disabled'],
    discovering: ['badge-warning', 'Discovering…'],
    ready: ['badge-success', 'Ready'],
    unreachable: ['badge-danger', 'Unreachable'],
  };

  function renderStatus(data) {
    const status = (data && data.status) || {};
    const provider = status.provider || { state: 'disabled', detail: '' };
    const [cls, label] = STATE_BADGE[provider.state] || ['badge-muted', provider.state || 'Unknown'];
    const badge = $('provider-state');
    badge.className = 'badge ' + cls;
    badge.textContent = label;
    badge.dataset.state = provider.state || '';
    $('sso-status').dataset.providerState = provider.state || '';
    $('provider-detail').textContent = provider.detail || '';

    const parts = [];
    if (!data.config) parts.push('No oidc.json (SSO not configured)');
    let loaded = '';
    if (status.generation !== undefined && status.generation !== null) loaded = 'Configuration generation ' + status.generation;
    if (status.loaded_at) loaded += (loaded ? ', loaded ' : 'Loaded ') + CF.formatTime(status.loaded_at);
    if (loaded) parts.push(loaded);
    $('config-generation').textContent = parts.join(' · ');

    const redirect = data.redirect_uri || initialRedirect;
    setValue('redirect-uri', redirect);
    $('copy-redirect-uri').setAttribute('data-copy', redirect);

    applyReadOnly(data);
    renderBanners(status, data);
    renderReplicas(data);
    renderFailures(data);
    updatePreview();
  }

  // Read-only mode: the setup repository cannot be written on this server (a mounted ConfigMap,
  // a checkout kept by git-sync), so nothing here can be saved or removed. Test Connection and
  // Reload from file change nothing and stay; Discard stays for edits made before a refusal.
  function applyReadOnly(data) {
    // An answer without the field (should one ever come) counts as writable.
    const readOnly = state.writeRefused || Boolean(data && data.setup_repo_writable === false);
    state.readOnly = readOnly;
    const form = $('sso-form');
    form.dataset.readOnly = readOnly ? 'true' : 'false';
    for (const node of form.querySelectorAll('input, select, textarea')) {
      if (node.disabled !== readOnly) node.disabled = readOnly;
    }
    for (const node of form.querySelectorAll('[data-row-action], #add-required-claim, #add-role-mapping')) {
      if (node.disabled !== readOnly) node.disabled = readOnly;
    }
    $('toggle-secret').disabled = readOnly;
    $('save').disabled = readOnly;
    $('remove-sso').disabled = readOnly || !(data && data.config);
  }

  // The replicas whose oidc.json differs from this one's (same_config is relative to this replica).
  function differingReplicas(data) {
    const replicas = data && Array.isArray(data.replicas) ? data.replicas : [];
    return replicas.filter((r) => r && typeof r === 'object' && r.same_config === false && !r.this);
  }

  function shortHash(hash) {
    const text = hash === null || hash === undefined ? '' : String(hash);
    return text ? text.slice(0, 12) : '';
  }

  // Replica ids and versions come from the database: text nodes only.
  function renderReplicas(data) {
    if (!data || !Array.isArray(data.replicas)) return;
    const replicas = data.replicas.filter((r) => r && typeof r === 'object');
    const section = $('replicas');
    const body = $('replicas-body');
    const signature = JSON.stringify(replicas);
    if (body.dataset.signature === signature) return;
    body.dataset.signature = signature;
    // One replica (always so with the built-in store): nothing to compare, nothing shown.
    if (replicas.length <= 1) {
      section.hidden = true;
      body.replaceChildren();
      return;
    }
    section.hidden = false;
    body.replaceChildren(
      el('ul', { class: 'checks replicas', id: 'replicas-list', 'aria-labelledby': 'replicas-title' }, replicas.map(replicaItem)),
    );
  }

  function replicaItem(replica) {
    const text = (value) => (value === null || value === undefined ? '' : String(value));
    const id = text(replica.id);
    const mine = replica.this === true;
    const differs = replica.same_config === false && !mine;
    const seen = text(replica.last_seen);
    const hash = shortHash(replica.config_sha256);
    return el(
      'li',
      { class: 'check replica' + (differs ? ' replica-is-different' : ''), dataset: { replicaId: id, this: mine ? 'true' : 'false', sameConfig: differs ? 'false' : 'true' } },
      el(
        'div',
        { class: 'check-body' },
        el(
          'div',
          { class: 'user-line' },
          el('code', { class: 'replica-id break' }, id || '(unnamed)'),
          mine ? el('span', { class: 'badge badge-sso replica-this' }, 'This replica') : null,
          differs ? el('span', { class: 'badge badge-warning replica-differs' }, 'Different oidc.json') : null,
        ),
        el(
          'div',
          { class: 'user-line muted small replica-facts' },
          el('span', { class: 'replica-version' }, 'Version ' + (text(replica.version) || 'unknown')),
          replica.listen ? el('span', { class: 'replica-listen break' }, '· ' + text(replica.listen)) : null,
          el('span', {}, '· last seen ', el('time', { class: 'replica-last-seen', datetime: seen || null }, seen ? CF.formatTime(seen) : 'unknown')),
          hash
            ? el('span', {}, '· oidc.json ', el('code', { class: 'replica-hash', title: 'SHA-256 ' + text(replica.config_sha256) }, hash))
            : el('span', {}, '· ', el('span', { class: 'replica-hash' }, 'no oidc.json')),
        ),
      ),
    );
  }

  // The server's text (cause, hint) only ever goes into text nodes: a cause can quote what an
  // identity provider, or anybody calling the callback, sent.
  function renderFailures(data) {
    // An answer without the list (should one ever come) keeps the one shown.
    if (!data || !Array.isArray(data.recent_failures)) return;
    const failures = data.recent_failures.filter((f) => f && typeof f === 'object');
    const body = $('recent-failures-body');
    // Keep the nodes when nothing changed (every poll answers the same list).
    const signature = JSON.stringify(failures);
    if (body.dataset.signature === signature) return;
    body.dataset.signature = signature;
    if (!failures.length) {
      body.replaceChildren(el('p', { class: 'empty-state', id: 'recent-failures-empty' }, 'No failed sign-ins since the server started.'));
      return;
    }
    body.replaceChildren(
      el('ul', { class: 'checks failures', id: 'recent-failures-list', 'aria-labelledby': 'recent-failures-title' }, failures.map(failureItem)),
    );
  }

  function failureItem(failure) {
    const text = (value) => (value === null || value === undefined ? '' : String(value));
    const kind = text(failure.kind);
    const [badgeClass, kindLabel] = FAILURE_KINDS[kind] || ['badge-muted', humanise(kind || 'failure')];
    const at = text(failure.at);
    const when = typeof CF.formatTime === 'function' ? CF.formatTime(at) : at;
    const hint = text(failure.hint).trim();
    return el(
      'li',
      { class: 'check failure', dataset: { reference: text(failure.reference), kind } },
      el(
        'div',
        { class: 'check-body' },
        el(
          'div',
          { class: 'user-line failure-head' },
          el('time', { class: 'muted small failure-time', datetime: at || null }, when),
          el('span', { class: 'failure-reference' }, el('span', { class: 'visually-hidden' }, 'Reference '), el('code', {}, text(failure.reference))),
          el('span', { class: 'badge failure-kind ' + badgeClass }, kindLabel),
        ),
        el('span', { class: 'failure-cause break' }, text(failure.cause)),
        hint ? el('p', { class: 'hint check-hint failure-hint' }, 'How to fix: ' + hint) : null,
      ),
    );
  }

  function renderBanners(status, data) {
    const box = $('sso-banners');
    const nodes = [];
    if (state.readOnly) {
      nodes.push(
        el(
          'div',
          { class: 'banner banner-warning', id: 'banner-read-only', role: 'alert' },
          el('h3', { class: 'banner-title' }, 'The setup repository is read-only on this server'),
          el(
            'p',
            {},
            'This server cannot write to its setup repository (for example a mounted Kubernetes ConfigMap or Secret, or a checkout kept current from git), so SSO settings cannot be saved or removed here. Change oidc.json in the setup repository\'s git instead: every replica picks it up.',
          ),
          el('p', { class: 'muted' }, 'Test Connection and Reload from file still work.'),
        ),
      );
    }
    const differing = differingReplicas(data);
    if (differing.length) {
      const one = differing.length === 1;
      nodes.push(
        el(
          'div',
          { class: 'banner banner-warning', id: 'banner-replicas-differ', role: 'alert' },
          el('h3', { class: 'banner-title' }, one ? 'A replica runs a different oidc.json' : differing.length + ' replicas run a different oidc.json'),
          el('p', {}, (one ? 'One replica runs' : 'These replicas run') + ' an oidc.json that differs from the one on this replica (the server answering this page):'),
          el(
            'ul',
            { class: 'error-details', id: 'replicas-differ-list' },
            differing.map((r) => el('li', { dataset: { replicaId: String(r.id || '') } }, el('code', { class: 'break' }, String(r.id || '(unnamed)')))),
          ),
          el(
            'p',
            {},
            'Sign-ins can behave differently depending on which replica answers. Check that every replica\'s setup repository has the same oidc.json (the same commit of the setup repository\'s git).',
          ),
        ),
      );
    }
    const error = status.error;
    if (error) {
      const where = [];
      if (error.line !== undefined && error.line !== null) where.push('line ' + error.line);
      if (error.column !== undefined && error.column !== null) where.push('column ' + error.column);
      if (error.pointer) where.push('at ' + error.pointer);
      const details = Array.isArray(error.details) ? error.details : [];
      nodes.push(
        el(
          'div',
          { class: 'banner banner-error', id: 'banner-file-error', role: 'alert' },
          el('h3', { class: 'banner-title' }, 'oidc.json on disk is invalid'),
          el('p', {}, 'The last valid configuration stays in use until the file is fixed.'),
          el('p', { class: 'banner-message' }, el('code', { id: 'file-error-message' }, error.message || 'Invalid configuration')),
          where.length ? el('p', { id: 'file-error-location' }, 'In oidc.json, ' + where.join(', ') + '.') : null,
          details.length
            ? el('ul', { class: 'error-details' }, details.map((d) => el('li', {}, d.pointer ? el('code', {}, d.pointer) : null, d.pointer ? ' ' : null, d.message || '')))
            : null,
          el('p', { class: 'muted' }, 'Fix the file and it reloads by itself, use Reload from file, or Save from this page to replace it.'),
        ),
      );
    }
    if (status.git && status.git.tracked) {
      nodes.push(
        el(
          'div',
          { class: 'banner banner-warning', id: 'banner-git-tracked', role: 'alert' },
          el('h3', { class: 'banner-title' }, 'oidc.json is tracked by git'),
          el(
            'p',
            {},
            'The file holds the client secret, and git tracks it (in the index or a commit). Stop tracking it with ',
            el('code', {}, 'git rm --cached oidc.json'),
            ', commit, and rotate the client secret at your identity provider: treat the current one as leaked.',
          ),
          el('div', { class: 'input-group input-group-inline' }, el('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-copy': 'git rm --cached oidc.json' }, 'Copy command')),
        ),
      );
    }
    // Keep the nodes when nothing changed, so screen readers do not re-announce every poll.
    const signature = JSON.stringify([
      error || null,
      Boolean(status.git && status.git.tracked),
      state.readOnly,
      differing.map((r) => String(r.id || '')),
    ]);
    if (box.dataset.signature !== signature) {
      box.dataset.signature = signature;
      box.replaceChildren(...nodes);
    }
  }

  // ---------------------------------------------------------------- server round trips

  // Status and banners always follow the server; the form follows it when it is not dirty
  // (or when asked, after a save), so typing is never overwritten by a poll.
  function render(data, opts) {
    state.data = data;
    renderStatus(data);
    const force = Boolean(opts && opts.form);
    if (!force && configSignature(data) === state.formSignature) return;
    if (force || !isDirty()) {
      fillForm(data);
    } else {
      state.serverChangedWhileDirty = true;
      updateDirty();
    }
  }

  // PUT and DELETE answer the GET shape; should one answer only the status (or nothing), the
  // page asks for the full picture instead of guessing.
  async function fullAnswer(answer) {
    if (answer && typeof answer === 'object' && 'config' in answer && 'status' in answer) return answer;
    return CF.api('GET', '/api/settings/sso');
  }

  function configSignature(data) {
    return JSON.stringify([data && data.config, data && data.client_secret_set]);
  }

  async function poll() {
    if (state.polling || state.busy || document.visibilityState !== 'visible') return;
    state.polling = true;
    const seq = state.seq;
    try {
      const data = await CF.api('GET', '/api/settings/sso');
      // A save, removal or reload started meanwhile: its answer is newer than this one.
      if (state.busy || seq !== state.seq) return;
      render(data);
      CF.showError($('load-error'), null);
    } catch (err) {
      if (err.status !== 401) CF.showError($('load-error'), { message: 'Could not refresh the status: ' + err.message });
    } finally {
      state.polling = false;
    }
  }

  function startPolling() {
    stopPolling();
    state.pollTimer = setInterval(poll, POLL_MS);
  }
  function stopPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  function setBusy(busy, button, label) {
    state.busy = busy;
    state.seq += 1;
    for (const id of ['save', 'remove-sso', 'reload-from-file', 'test-connection']) {
      const b = $(id);
      if (b) b.setAttribute('aria-disabled', busy ? 'true' : 'false');
    }
    if (button) {
      if (busy) {
        button.dataset.label = button.textContent;
        button.replaceChildren(el('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ' + (label || button.textContent));
        button.setAttribute('aria-busy', 'true');
      } else {
        button.textContent = button.dataset.label || button.textContent;
        button.removeAttribute('aria-busy');
      }
    }
  }

  async function save(force) {
    if (state.busy || state.readOnly) return;
    clearFieldErrors();
    const payload = formPayload();
    const problems = localProblems(payload);
    if (problems.length) {
      showValidationErrors({ message: 'Some settings need attention.', details: problems });
      return;
    }
    const button = $('save');
    setBusy(true, button, 'Saving…');
    try {
      const data = await fullAnswer(await CF.api('PUT', '/api/settings/sso' + (force ? '?force=true' : ''), payload));
      setBusy(false, button);
      render(data, { form: true });
      CF.toast('SSO settings saved', 'success');
      if (data && data.status && data.status.error) {
        CF.toast('Saved, but the server reports a problem: ' + data.status.error.message, 'error');
      }
    } catch (err) {
      setBusy(false, button);
      if (refusedAsReadOnly(err)) return;
      if (err.status === 409 && err.code === 'lockout_risk') {
        openLockoutDialog(err.message);
      } else if (err.status === 422 || err.code === 'invalid_config') {
        showValidationErrors(err);
      } else {
        CF.showError($('form-error'), err);
        $('form-error').scrollIntoView({ block: 'nearest' });
      }
    }
  }

  function openLockoutDialog(message) {
    $('lockout-server-message').textContent =
      message || 'No Server Admin has signed in with SSO yet, so nobody may be able to sign in once local login is off.';
    const dialog = $('lockout-dialog');
    dialog.returnValue = '';
    dialog.showModal();
  }

  async function removeSso() {
    const button = $('remove-sso');
    setBusy(true, button, 'Removing…');
    try {
      const data = await fullAnswer(await CF.api('DELETE', '/api/settings/sso'));
      setBusy(false, button);
      clearTestResults();
      render(data, { form: true });
      CF.toast('SSO removed. Local login is allowed.', 'success');
    } catch (err) {
      setBusy(false, button);
      if (refusedAsReadOnly(err)) return;
      CF.showError($('form-error'), err);
    }
  }

  // 409 setup_repo_read_only (the page thought the setup repository writable): its message goes
  // where save errors go, and the page turns read-only until it is loaded again.
  function refusedAsReadOnly(err) {
    if (!err || err.status !== 409 || err.code !== 'setup_repo_read_only') return false;
    state.writeRefused = true;
    if (state.data) renderStatus(state.data);
    else applyReadOnly(null);
    CF.showError($('form-error'), err);
    $('form-error').scrollIntoView({ block: 'nearest' });
    return true;
  }

  async function reloadFromFile() {
    if (state.busy) return;
    const button = $('reload-from-file');
    setBusy(true, button, 'Reloading…');
    let result = null;
    try {
      result = await CF.api('POST', '/api/settings/sso/reload');
    } catch (err) {
      setBusy(false, button);
      CF.toast('Reload failed: ' + err.message, 'error');
      return;
    }
    try {
      const data = await CF.api('GET', '/api/settings/sso');
      setBusy(false, button);
      render(data);
    } catch (err) {
      setBusy(false, button);
    }
    const outcome = result && result.result;
    if (outcome === 'applied') CF.toast('Reloaded oidc.json: the new configuration is live.', 'success');
    else if (outcome === 'unchanged') CF.toast('oidc.json is unchanged.', 'info');
    else if (outcome === 'rejected') {
      const msg = result.error && result.error.message ? ': ' + result.error.message : '';
      CF.toast('oidc.json was rejected' + msg + '. The last valid configuration stays in use.', 'error');
    } else CF.toast('Reloaded.', 'info');
  }

  function clearTestResults() {
    $('test-output').replaceChildren();
  }

  async function testConnection() {
    if (state.busy) return;
    clearFieldErrors();
    const payload = formPayload();
    const problems = localProblems(payload).filter((p) => p.pointer !== '/client_secret');
    if (problems.length) {
      showValidationErrors({ message: 'Some settings need attention before testing.', details: problems });
      return;
    }
    const button = $('test-connection');
    setBusy(true, button, 'Testing…');
    $('test-output').replaceChildren(el('p', { class: 'muted', id: 'test-running' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Contacting the identity provider…'));
    try {
      const result = await CF.api('POST', '/api/settings/sso/test', payload);
      setBusy(false, button);
      renderTestResults(result || { ok: false, checks: [] });
    } catch (err) {
      setBusy(false, button);
      clearTestResults();
      if (err.status === 422 || err.code === 'invalid_config') showValidationErrors(err);
      else CF.showError($('test-output'), err);
    }
  }

  function renderTestResults(result) {
    const checks = Array.isArray(result.checks) ? result.checks : [];
    const failed = checks.filter((c) => !c.ok).length;
    const ok = Boolean(result.ok) && failed === 0;
    const summary = el(
      'p',
      { id: 'test-summary', class: 'test-summary ' + (ok ? 'is-ok' : 'is-fail'), dataset: { ok: ok ? 'true' : 'false' } },
      ok
        ? '✓ Connection works: all ' + checks.length + ' checks passed.'
        : '✗ ' + failed + ' of ' + checks.length + ' checks failed. See the hints below.',
    );
    const list = el(
      'ul',
      { class: 'checks', id: 'test-results', 'aria-label': 'Test Connection results' },
      checks.map((check) => {
        const known = CHECKS[check.name] || { title: humanise(check.name), hint: '' };
        return el(
          'li',
          { class: 'check ' + (check.ok ? 'check-ok' : 'check-fail'), dataset: { check: check.name || '' } },
          el('span', { class: 'check-icon', 'aria-hidden': 'true' }, check.ok ? '✓' : '✗'),
          el(
            'div',
            { class: 'check-body' },
            el('strong', {}, known.title, el('span', { class: 'visually-hidden' }, check.ok ? ' (passed)' : ' (failed)')),
            check.detail ? el('span', { class: 'check-detail' }, check.detail) : null,
            !check.ok && known.hint ? el('p', { class: 'hint check-hint' }, 'How to fix: ' + known.hint) : null,
          ),
        );
      }),
    );
    $('test-output').replaceChildren(summary, list);
  }

  function humanise(name) {
    const s = String(name || 'check').replace(/[_-]+/g, ' ');
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    const form = $('sso-form');
    form.addEventListener('input', () => updateDirty());
    form.addEventListener('change', () => updateDirty());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      save(false);
    });

    $('sso-provider').addEventListener('change', () => {
      const provider = $('sso-provider').value;
      const previous = detectProvider($('sso-issuer').value);
      if (previous.provider !== provider) setValue('sso-tenant', '');
      applyProviderUi(provider);
      const issuer = issuerFor(provider, $('sso-tenant').value);
      if (issuer !== null) setValue('sso-issuer', issuer);
      else if (previous.provider !== 'custom') setValue('sso-issuer', '');
      if (!$('field-tenant').hidden) $('sso-tenant').focus();
      updateDirty();
    });
    $('sso-tenant').addEventListener('input', () => {
      const issuer = issuerFor($('sso-provider').value, $('sso-tenant').value);
      if (issuer !== null) setValue('sso-issuer', issuer);
    });
    $('sso-issuer').addEventListener('change', () => {
      // A pasted or typed issuer picks the provider it belongs to.
      const detected = detectProvider($('sso-issuer').value);
      if (detected.provider !== $('sso-provider').value || detected.tenant !== $('sso-tenant').value) {
        setValue('sso-provider', detected.provider);
        setValue('sso-tenant', detected.tenant);
        applyProviderUi(detected.provider);
        updateDirty();
      }
    });
    // User Provisioning: checked as you type; a row's missing half once the focus leaves it.
    const recheck = (event) => {
      const key = liveKeyOf(event.target);
      if (key) validateLive(key);
    };
    form.addEventListener('input', recheck);
    form.addEventListener('change', recheck);
    form.addEventListener('focusout', (event) => {
      const row = event.target.closest('li.rule-row');
      if (!row || (event.relatedTarget && row.contains(event.relatedTarget))) return;
      if (!row.isConnected) return;
      row.dataset.touched = 'true';
      validateLive(row.dataset.kind);
    });
    for (const kind of Object.keys(ROW_KINDS)) {
      $(ROW_KINDS[kind].add).addEventListener('click', () => addRow(kind));
      $(ROW_KINDS[kind].list).addEventListener('click', (event) => {
        const button = event.target.closest('[data-row-action="remove"]');
        if (button && !button.disabled) removeRow(button.closest('li.rule-row'));
      });
    }
    $('preview-sso').addEventListener('click', () => {
      // A normal navigation: the identity provider's pages, then the server's preview page.
      if (!$('preview-sso').disabled) window.location.assign('/auth/oidc/login?preview=1');
    });
    $('sso-allow-local').addEventListener('change', updateLocalWarning);
    $('sso-link-by-email').addEventListener('change', updateLinkWarning);

    $('toggle-secret').addEventListener('click', () => {
      const input = $('sso-client-secret');
      const show = input.type === 'password';
      input.type = show ? 'text' : 'password';
      $('toggle-secret').textContent = show ? 'Hide' : 'Show';
      $('toggle-secret').setAttribute('aria-pressed', show ? 'true' : 'false');
    });

    $('test-connection').addEventListener('click', testConnection);
    $('discard').addEventListener('click', () => {
      if (state.data) fillForm(state.data);
      CF.toast('Changes discarded', 'info');
    });
    $('reload-from-file').addEventListener('click', reloadFromFile);

    $('remove-sso').addEventListener('click', () => {
      if (state.busy || $('remove-sso').disabled) return;
      const dialog = $('remove-dialog');
      dialog.returnValue = '';
      dialog.showModal();
    });
    $('remove-dialog').addEventListener('close', () => {
      if ($('remove-dialog').returnValue === 'confirm') removeSso();
      $('remove-sso').focus();
    });
    $('lockout-dialog').addEventListener('close', () => {
      if ($('lockout-dialog').returnValue === 'force') save(true);
      else {
        state.tabs.select('tab-provisioning');
        $('sso-allow-local').focus();
      }
    });

    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        poll();
        startPolling();
      } else stopPolling();
    });
    window.addEventListener('beforeunload', (event) => {
      if (isDirty()) {
        event.preventDefault();
        event.returnValue = '';
      }
    });
  }

  async function start() {
    renderSkeleton();
    wire();
    try {
      const data = await CF.api('GET', '/api/settings/sso');
      render(data, { form: true });
    } catch (err) {
      CF.showError($('load-error'), { message: 'Could not load the SSO settings: ' + err.message });
    }
    app.dataset.ready = 'true';
    startPolling();
  }

  start();
})();
