//! The `oidc.json` model: parsing, validation against the embedded JSON schema, and the validated
//! [`OidcConfig`] the rest of the daemon reads.
//!
//! The schema (`schemas/oidc.schema.json`) is the single source of truth for the file's structure:
//! every structural error comes from it, each with its JSON pointer. The few rules a schema cannot
//! state (a well-formed URL without query, fragment or credentials) are checked here afterwards.
//! This module never touches the file system.

use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) use crate::secret::Secret;
use crate::vocab::Role;

/// The file name of the SSO configuration at the root of the setup repository.
pub(crate) const OIDC_FILE: &str = "oidc.json";

/// The JSON schema of `oidc.json`, embedded so the binary validates without the source tree.
pub(crate) const OIDC_SCHEMA: &str = include_str!("../../schemas/oidc.schema.json");

/// The top-level fields the schema allows; used to suggest a fix for a misspelt field.
const KNOWN_FIELDS: [&str; 22] = [
    "$schema",
    "enabled",
    "display_name",
    "client_id",
    "client_secret",
    "issuer",
    "scopes",
    "auto_provision",
    "default_role",
    "allow_local_auth",
    "link_by_email",
    "idp_ca_file",
    "email_claim",
    "name_claim",
    "username_claim",
    "groups_claim",
    "required_claims",
    "allowed_email_domains",
    "allowed_groups",
    "role_mapping",
    "idp_logout",
    "backchannel_logout_revokes_keys",
];

/// Larger `oidc.json` files are rejected unread (1 MiB): the file is a few hundred bytes.
pub(crate) const MAX_OIDC_FILE_BYTES: u64 = 1024 * 1024;

/// Default of `display_name`, as in the guide's Configuration Reference.
pub(crate) const DEFAULT_DISPLAY_NAME: &str = "Sign in with SSO";

/// The compiled schema. Invariant: the embedded schema is valid (a unit test compiles it), so
/// building it cannot fail at run time.
#[allow(
    clippy::expect_used,
    reason = "the invariant above, checked by a unit test"
)]
static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(OIDC_SCHEMA).expect("embedded schema is valid JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("embedded schema compiles")
});

/// The file as written, before defaults. Mirrors the schema; `deny_unknown_fields` is a second
/// guard behind the schema's `additionalProperties: false`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidcConfig {
    #[serde(rename = "$schema")]
    _schema: Option<String>,
    enabled: bool,
    display_name: Option<String>,
    client_id: String,
    client_secret: String,
    issuer: String,
    scopes: Option<Vec<String>>,
    auto_provision: Option<bool>,
    default_role: Option<String>,
    allow_local_auth: Option<bool>,
    link_by_email: Option<LinkByEmail>,
    idp_ca_file: Option<String>,
    email_claim: Option<String>,
    name_claim: Option<String>,
    username_claim: Option<String>,
    groups_claim: Option<String>,
    required_claims: Option<std::collections::BTreeMap<String, Vec<String>>>,
    allowed_email_domains: Option<Vec<String>>,
    allowed_groups: Option<Vec<String>>,
    role_mapping: Option<Vec<RawRoleMapping>>,
    idp_logout: Option<bool>,
    backchannel_logout_revokes_keys: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoleMapping {
    group: String,
    role: String,
}

/// Where a claim is: a top-level claim name (which may contain dots or slashes) or, starting
/// with `/`, a JSON Pointer into nested claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClaimPath(String);

impl ClaimPath {
    pub fn new(location: impl Into<String>) -> ClaimPath {
        ClaimPath(location.into())
    }

    /// The location as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The claim's value in `claims`, if present (a JSON `null` counts as absent).
    pub fn find<'a>(&self, claims: &'a serde_json::Map<String, Value>) -> Option<&'a Value> {
        let found = match self.0.strip_prefix('/') {
            None => claims.get(&self.0),
            Some(rest) => {
                let mut tokens = rest
                    .split('/')
                    .map(|t| t.replace("~1", "/").replace("~0", "~"));
                let first = tokens.next()?;
                let mut value = claims.get(&first)?;
                for token in tokens {
                    value = match value {
                        Value::Object(map) => map.get(&token)?,
                        Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                        _ => return None,
                    };
                }
                Some(value)
            }
        };
        found.filter(|v| !v.is_null())
    }
}

/// Who may sign in with SSO and with which access, decided from the provider's claims
/// (contract section 8). Every field is optional in the file: the defaults decide as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRules {
    pub email_claim: ClaimPath,
    pub name_claim: ClaimPath,
    /// Where a new user's username comes from; `None`: from the email.
    pub username_claim: Option<ClaimPath>,
    pub groups_claim: ClaimPath,
    /// Each claim must be present and equal one of the values (an array: contain one).
    pub required_claims: Vec<(ClaimPath, Vec<String>)>,
    /// Lower-cased domains; empty: any.
    pub allowed_email_domains: Vec<String>,
    /// Empty: any.
    pub allowed_groups: Vec<String>,
    /// Empty: access is managed here, not by the provider.
    pub role_mapping: Vec<(String, Role)>,
}

impl Default for AccessRules {
    fn default() -> Self {
        AccessRules {
            email_claim: ClaimPath::new("email"),
            name_claim: ClaimPath::new("name"),
            username_claim: None,
            groups_claim: ClaimPath::new("groups"),
            required_claims: Vec::new(),
            allowed_email_domains: Vec::new(),
            allowed_groups: Vec::new(),
            role_mapping: Vec::new(),
        }
    }
}

impl AccessRules {
    /// Whether the provider manages SSO users' access (`role_mapping` is set).
    pub fn manages_access(&self) -> bool {
        !self.role_mapping.is_empty()
    }

    /// Whether a login needs the groups claim.
    pub fn needs_groups(&self) -> bool {
        !self.allowed_groups.is_empty() || self.manages_access()
    }
}

/// How a first SSO login finds an existing user by email (contract section 8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkByEmail {
    /// Only when the provider says `email_verified: true`.
    #[default]
    Verified,
    /// Never: existing users are linked by an administrator, or sign in with their password.
    Never,
    /// Also when the provider sends no `email_verified` (Entra ID never does): the provider is
    /// trusted to own every email it asserts. Chosen knowingly.
    TrustProvider,
}

impl LinkByEmail {
    /// Whether a login whose provider said `email_verified` may take over an existing user.
    pub fn allows(self, email_verified: Option<bool>) -> bool {
        match self {
            LinkByEmail::Verified => email_verified == Some(true),
            LinkByEmail::Never => false,
            LinkByEmail::TrustProvider => email_verified != Some(false),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkByEmail::Verified => "verified",
            LinkByEmail::Never => "never",
            LinkByEmail::TrustProvider => "trust_provider",
        }
    }
}

/// A validated `oidc.json` with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// SSO is offered only when true.
    pub enabled: bool,
    /// Label of the SSO button.
    pub display_name: String,
    /// The client id registered at the identity provider.
    pub client_id: String,
    /// The client secret registered at the identity provider.
    pub client_secret: Secret,
    /// The issuer exactly as written: discovery must answer this string byte for byte.
    pub issuer: String,
    /// Scopes requested at login; always contains `openid`.
    pub scopes: Vec<String>,
    /// Whether a first SSO login without a matching user creates one.
    pub auto_provision: bool,
    /// The role bound to auto-provisioned users (legacy names already mapped).
    pub default_role: Role,
    /// The local username/password form as written in the file; see
    /// [`OidcConfig::local_auth_allowed`] for the effective value.
    pub allow_local_auth: bool,
    /// When a first SSO login may be linked to an existing user with the same email.
    pub link_by_email: LinkByEmail,
    /// A PEM file of certificate authorities trusted for the identity provider, besides the
    /// system's store: as written (relative to the setup repository, or absolute).
    pub idp_ca_file: Option<String>,
    /// The content of `idp_ca_file`, read by [`load_idp_ca`] (the file alone says nothing of it).
    pub idp_ca_pem: Option<std::sync::Arc<[u8]>>,
    /// Claim locations, admission rules and the role mapping.
    pub access: AccessRules,
    /// Sign-out of an SSO session also signs out at the provider (`end_session_endpoint`).
    pub idp_logout: bool,
    /// A back-channel logout also revokes the user's device-login keys.
    pub backchannel_logout_revokes_keys: bool,
}

impl OidcConfig {
    /// Whether this configuration is the one a login started for (issuer, client_id) belongs
    /// to.
    pub fn is_for(&self, issuer: &str, client_id: &str) -> bool {
        self.issuer == issuer && self.client_id == client_id
    }

    /// Whether local login is allowed. A configuration with SSO disabled always allows it: with
    /// neither, nobody could sign in.
    pub fn local_auth_allowed(&self) -> bool {
        self.allow_local_auth || !self.enabled
    }
}

/// One thing wrong with a file: where (line and column for syntax errors, a JSON pointer for
/// everything else) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigProblem {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

impl ConfigProblem {
    fn at_pointer(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem {
            message: message.into(),
            line: None,
            column: None,
            pointer: Some(pointer.into()),
        }
    }
}

impl fmt::Display for ConfigProblem {
    /// `line 3, column 5: message` for syntax errors, `/issuer: message` for the others.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column, &self.pointer) {
            (Some(line), Some(column), _) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (_, _, Some(pointer)) if pointer.is_empty() => write!(f, "(root): {}", self.message),
            (_, _, Some(pointer)) => write!(f, "{pointer}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Parses and validates the bytes of an `oidc.json`.
///
/// Fails with every problem found: one syntax error (with line and column), or every schema
/// violation and semantic error (each with its JSON pointer).
pub fn parse_oidc_config(bytes: &[u8]) -> Result<OidcConfig, Vec<ConfigProblem>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| vec![syntax_problem(&e)])?;
    let mut problems: Vec<ConfigProblem> = VALIDATOR
        .iter_errors(&value)
        .flat_map(|e| schema_problems(&e))
        .collect();
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        problems.dedup();
        return Err(problems);
    }
    let raw: RawOidcConfig = serde_json::from_value(value)
        .map_err(|e| vec![ConfigProblem::at_pointer("", e.to_string())])?;
    build_oidc_config(raw)
}

fn syntax_problem(e: &serde_json::Error) -> ConfigProblem {
    let message = if e.line() == 0 {
        format!("invalid JSON: {e}")
    } else {
        // serde_json appends " at line L column C"; the position is reported in its own fields.
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        format!(
            "invalid JSON: {}",
            text.strip_suffix(&suffix).unwrap_or(&text)
        )
    };
    ConfigProblem {
        message,
        line: Some(e.line().max(1)),
        column: Some(e.column()),
        pointer: None,
    }
}

/// Turns a schema violation into problems whose messages a person can act on: one for each
/// unknown field, one for anything else.
fn schema_problems(e: &jsonschema::ValidationError<'_>) -> Vec<ConfigProblem> {
    let pointer = e.instance_path().as_str().to_owned();
    if let ValidationErrorKind::AdditionalProperties { unexpected } = e.kind() {
        return unexpected
            .iter()
            .map(|name| {
                let hint = closest_field(name)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                ConfigProblem::at_pointer(
                    format!("{pointer}/{}", escape_pointer_token(name)),
                    format!("unknown field `{name}`{hint}"),
                )
            })
            .collect();
    }
    vec![schema_problem(e, pointer)]
}

fn schema_problem(e: &jsonschema::ValidationError<'_>, pointer: String) -> ConfigProblem {
    if pointer.starts_with("/client_secret") {
        // Schema messages quote the value: never for the secret.
        return ConfigProblem::at_pointer(
            "/client_secret",
            "must be a non-empty string of at most 4096 characters",
        );
    }
    match e.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            ConfigProblem::at_pointer(format!("/{name}"), "is required")
        }
        ValidationErrorKind::Format { .. } | ValidationErrorKind::Pattern { .. }
            if pointer == "/issuer" && e.instance().as_str().is_some_and(has_placeholder) =>
        {
            ConfigProblem::at_pointer(
                pointer,
                "contains a placeholder like `{tenant-id}`: replace it with your value",
            )
        }
        ValidationErrorKind::Format { .. } if pointer == "/issuer" => {
            ConfigProblem::at_pointer(pointer, "is not a valid URL")
        }
        ValidationErrorKind::Pattern { .. } if pointer == "/issuer" => ConfigProblem::at_pointer(
            pointer,
            "must be an https:// URL (http:// is allowed only for 127.0.0.1, [::1] and localhost)",
        ),
        ValidationErrorKind::Pattern { .. } if pointer.starts_with("/scopes/") => {
            ConfigProblem::at_pointer(pointer, "is not a valid OAuth scope (no spaces or quotes)")
        }
        ValidationErrorKind::Contains if pointer == "/scopes" => {
            ConfigProblem::at_pointer(pointer, "must contain \"openid\"")
        }
        ValidationErrorKind::UniqueItems if pointer == "/scopes" => {
            ConfigProblem::at_pointer(pointer, "must not list a scope twice")
        }
        ValidationErrorKind::Enum { .. } if pointer == "/default_role" => {
            ConfigProblem::at_pointer(
                pointer,
                format!(
                    "{} is not a role; use one of viewer, developer, environment_admin, server_admin (legacy: manager, admin)",
                    e.instance()
                ),
            )
        }
        _ => ConfigProblem::at_pointer(pointer, e.to_string()),
    }
}

/// Escapes a key for use in a JSON pointer (RFC 6901: `~` -> `~0`, `/` -> `~1`).
fn escape_pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether a value still holds a placeholder from the documentation, such as `{tenant-id}`.
fn has_placeholder(value: &str) -> bool {
    value.contains('{') || value.contains('}')
}

/// Whether a value is still a placeholder from the docs or the examples: a `{name}` in braces,
/// or the examples' `replace-with-...` and `your-...` values.
fn is_placeholder(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    let braced = value.split('{').skip(1).any(|after| {
        after.split_once('}').is_some_and(|(inside, _)| {
            !inside.is_empty()
                && inside.len() <= 40
                && inside
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' '))
        })
    });
    braced || lower.starts_with("replace-with-") || lower.starts_with("your-")
}

/// The known field nearest to a misspelt one (at most two edits away).
fn closest_field(unknown: &str) -> Option<&'static str> {
    KNOWN_FIELDS
        .iter()
        .map(|known| (edit_distance(unknown, known), *known))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, known)| known)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Largest CA file read.
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// Reads the certificate authorities `config.idp_ca_file` names (relative to `root`, the setup
/// repository) into `config.idp_ca_pem`. Blocking. Nothing to do without the field.
///
/// Fails, pointing at `/idp_ca_file`, when the file cannot be read, is larger than 1 MiB, or
/// holds no PEM certificate.
pub(crate) fn load_idp_ca(config: &mut OidcConfig, root: &Path) -> Result<(), ConfigProblem> {
    let Some(file) = &config.idp_ca_file else {
        config.idp_ca_pem = None;
        return Ok(());
    };
    let path = root.join(file);
    let problem = |message: String| ConfigProblem::at_pointer("/idp_ca_file", message);
    let meta = std::fs::metadata(&path)
        .map_err(|e| problem(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_CA_FILE_BYTES {
        return Err(problem(format!("{} is larger than 1 MiB", path.display())));
    }
    let pem = std::fs::read(&path)
        .map_err(|e| problem(format!("cannot read {}: {e}", path.display())))?;
    let certificates = openidconnect::reqwest::Certificate::from_pem_bundle(&pem)
        .map(|c| c.len())
        .unwrap_or(0);
    if certificates == 0 {
        return Err(problem(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    config.idp_ca_pem = Some(pem.into());
    Ok(())
}

/// How many certificates a PEM bundle holds (for Test Connection).
pub(crate) fn pem_certificates(pem: &[u8]) -> usize {
    openidconnect::reqwest::Certificate::from_pem_bundle(pem).map_or(0, |c| c.len())
}

/// Applies defaults and the rules the schema cannot state.
fn build_oidc_config(raw: RawOidcConfig) -> Result<OidcConfig, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    if let Err(message) = validate_issuer(&raw.issuer) {
        problems.push(ConfigProblem::at_pointer("/issuer", message));
    }
    let default_role = match raw
        .default_role
        .as_deref()
        .unwrap_or("developer")
        .parse::<Role>()
    {
        Ok(role) => role,
        Err(e) => {
            problems.push(ConfigProblem::at_pointer("/default_role", e.to_string()));
            Role::Developer
        }
    };
    if raw.client_id.trim().is_empty() {
        problems.push(ConfigProblem::at_pointer("/client_id", "must not be blank"));
    }
    // An example copied unedited must not look like a working configuration.
    if raw.enabled {
        for (pointer, value) in [
            ("/client_id", raw.client_id.as_str()),
            ("/client_secret", raw.client_secret.as_str()),
            (
                "/display_name",
                raw.display_name.as_deref().unwrap_or_default(),
            ),
        ] {
            if is_placeholder(value) {
                problems.push(ConfigProblem::at_pointer(
                    pointer,
                    "still holds a placeholder from the example: replace it with your value",
                ));
            }
        }
    }
    let mut role_mapping = Vec::new();
    for (i, mapping) in raw.role_mapping.unwrap_or_default().into_iter().enumerate() {
        match mapping.role.parse::<Role>() {
            Ok(role) => role_mapping.push((mapping.group, role)),
            Err(e) => problems.push(ConfigProblem::at_pointer(
                format!("/role_mapping/{i}/role"),
                e.to_string(),
            )),
        }
    }
    let defaults = AccessRules::default();
    let access = AccessRules {
        email_claim: raw.email_claim.map_or(defaults.email_claim, ClaimPath),
        name_claim: raw.name_claim.map_or(defaults.name_claim, ClaimPath),
        username_claim: raw.username_claim.map(ClaimPath),
        groups_claim: raw.groups_claim.map_or(defaults.groups_claim, ClaimPath),
        required_claims: raw
            .required_claims
            .unwrap_or_default()
            .into_iter()
            .map(|(claim, values)| (ClaimPath(claim), values))
            .collect(),
        allowed_email_domains: raw
            .allowed_email_domains
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        allowed_groups: raw.allowed_groups.unwrap_or_default(),
        role_mapping,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(OidcConfig {
        enabled: raw.enabled,
        display_name: raw
            .display_name
            .unwrap_or_else(|| DEFAULT_DISPLAY_NAME.to_owned()),
        client_id: raw.client_id,
        client_secret: Secret::new(raw.client_secret),
        issuer: raw.issuer,
        scopes: raw
            .scopes
            .unwrap_or_else(|| ["openid", "profile", "email"].map(String::from).to_vec()),
        auto_provision: raw.auto_provision.unwrap_or(true),
        default_role,
        allow_local_auth: raw.allow_local_auth.unwrap_or(true),
        link_by_email: raw.link_by_email.unwrap_or_default(),
        idp_ca_file: raw.idp_ca_file,
        idp_ca_pem: None,
        access,
        idp_logout: raw.idp_logout.unwrap_or(false),
        backchannel_logout_revokes_keys: raw.backchannel_logout_revokes_keys.unwrap_or(false),
    })
}

/// The issuer must be a URL that discovery can be appended to: https (or http on a loopback
/// host), a host, and no credentials, query or fragment.
fn validate_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("is not a valid URL: {e}"))?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(
                "must be an https:// URL (http:// is allowed only for 127.0.0.1, [::1] and localhost)"
                    .into(),
            );
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not contain a query (`?`) or fragment (`#`)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_refused_in_every_string_field_when_enabled() {
        for (field, value) in [
            ("client_id", "{client-id}"),
            ("client_secret", "{secret}"),
            ("client_secret", "replace-with-your-client-secret"),
            ("client_id", "your-client-id"),
            ("display_name", "Sign in with {provider}"),
        ] {
            let mut config = serde_json::json!({"enabled": true, "client_id": "c",
                "client_secret": "s", "issuer": "https://idp.example.com"});
            config[field] = value.into();
            let problems = parse_oidc_config(config.to_string().as_bytes()).unwrap_err();
            assert_eq!(
                problems[0].pointer.as_deref(),
                Some(&*format!("/{field}")),
                "{value}"
            );
            assert!(problems[0].message.contains("placeholder"), "{problems:?}");
            config["enabled"] = false.into();
            parse_oidc_config(config.to_string().as_bytes()).unwrap();
        }
        // Real secrets with punctuation are not placeholders.
        assert!(!is_placeholder("a{b$}c"));
        assert!(!is_placeholder("Qx8~vZ.3_kP-aa"));
    }

    const MINIMAL: &str = r#"{"enabled": true, "client_id": "cid", "client_secret": "s3cr:et&+%",
        "issuer": "https://login.example.com/tenant/v2.0"}"#;

    fn problems(text: &str) -> Vec<ConfigProblem> {
        parse_oidc_config(text.as_bytes()).expect_err("should be invalid")
    }

    fn with(field: &str, value: &str) -> String {
        let mut v: Value = serde_json::from_str(MINIMAL).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    #[test]
    fn embedded_schema_compiles_and_has_an_id() {
        let schema: Value = serde_json::from_str(OIDC_SCHEMA).unwrap();
        assert!(schema["$id"].as_str().unwrap().starts_with("https://"));
        assert!(schema["$schema"].as_str().unwrap().contains("2020-12"));
        LazyLock::force(&VALIDATOR);
    }

    #[test]
    fn minimal_file_gets_the_guides_defaults() {
        let c = parse_oidc_config(MINIMAL.as_bytes()).unwrap();
        assert!(c.enabled);
        assert_eq!(c.display_name, "Sign in with SSO");
        assert_eq!(c.scopes, ["openid", "profile", "email"]);
        assert!(c.auto_provision);
        assert_eq!(c.default_role, Role::Developer);
        assert!(c.allow_local_auth);
        assert_eq!(c.client_secret.expose(), "s3cr:et&+%");
        assert_eq!(c.issuer, "https://login.example.com/tenant/v2.0");
    }

    #[test]
    fn the_guides_example_is_valid_once_its_placeholder_is_filled_in() {
        let text = r#"{
            "enabled": true,
            "display_name": "Sign in with Microsoft",
            "client_id": "your-client-id",
            "client_secret": "your-client-secret",
            "issuer": "https://login.microsoftonline.com/{tenant-id}/v2.0",
            "scopes": ["openid", "profile", "email"],
            "auto_provision": true,
            "default_role": "developer",
            "allow_local_auth": true
        }"#;
        // Every value the guide leaves for the reader to fill in is named.
        let p = problems(text);
        assert_eq!(p.len(), 1, "the schema stops at the issuer first: {p:?}");
        assert_eq!(p[0].pointer.as_deref(), Some("/issuer"));
        assert!(p[0].message.contains("placeholder"), "{p:?}");
        let p = problems(&text.replace("{tenant-id}", "0f1e2d3c"));
        let pointers: Vec<_> = p.iter().map(|p| p.pointer.as_deref().unwrap()).collect();
        assert_eq!(pointers, ["/client_id", "/client_secret"], "{p:?}");
        let filled = text
            .replace("{tenant-id}", "0f1e2d3c")
            .replace("your-client-id", "4a5b6c")
            .replace("your-client-secret", "s3cret");
        let c = parse_oidc_config(filled.as_bytes()).unwrap();
        assert_eq!(c.display_name, "Sign in with Microsoft");
    }

    #[test]
    fn schema_key_is_allowed_and_ignored() {
        let text = with(
            "$schema",
            r#""https://coderflow.dev/schemas/oidc.schema.json""#,
        );
        assert!(parse_oidc_config(text.as_bytes()).is_ok());
    }

    #[test]
    fn unknown_field_is_rejected_with_a_suggestion() {
        let p = problems(&with("alow_local_auth", "false"));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].pointer.as_deref(), Some("/alow_local_auth"));
        assert!(
            p[0].message.contains("did you mean `allow_local_auth`"),
            "{p:?}"
        );
    }

    #[test]
    fn each_unknown_field_is_its_own_problem_with_an_escaped_pointer() {
        let mut v: Value = serde_json::from_str(MINIMAL).unwrap();
        v["enabeld"] = true.into();
        v["a/b~c"] = 1.into();
        let p = problems(&v.to_string());
        let pointers: Vec<_> = p.iter().filter_map(|p| p.pointer.as_deref()).collect();
        assert_eq!(pointers, ["/a~1b~0c", "/enabeld"]);
        assert_eq!(p[0].message, "unknown field `a/b~c`");
        assert_eq!(
            p[1].message,
            "unknown field `enabeld`; did you mean `enabled`?"
        );
    }

    #[test]
    fn every_missing_required_field_is_listed() {
        let p = problems("{}");
        let pointers: Vec<_> = p.iter().filter_map(|p| p.pointer.as_deref()).collect();
        assert_eq!(
            pointers,
            ["/client_id", "/client_secret", "/enabled", "/issuer"]
        );
        assert!(p.iter().all(|p| p.message == "is required"));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let p = problems("{\n  \"enabled\": true,\n  \"client_id\" \"x\"\n}");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(3));
        assert_eq!(p[0].column, Some(15));
        assert!(
            p[0].message.starts_with("invalid JSON: expected `:`"),
            "{p:?}"
        );
        assert_eq!(
            p[0].to_string(),
            format!("line 3, column 15: {}", p[0].message)
        );
    }

    #[test]
    fn empty_file_is_a_syntax_error() {
        let p = problems("");
        assert_eq!(p[0].line, Some(1));
        assert!(p[0].message.contains("EOF"), "{p:?}");
    }

    #[test]
    fn wrong_types_are_reported_with_pointers() {
        let mut v: Value = serde_json::from_str(MINIMAL).unwrap();
        v["enabled"] = "yes".into();
        v["auto_provision"] = 1.into();
        v["client_id"] = "".into();
        let p = problems(&v.to_string());
        let pointers: Vec<_> = p.iter().filter_map(|p| p.pointer.as_deref()).collect();
        assert_eq!(pointers, ["/auto_provision", "/client_id", "/enabled"]);
    }

    #[test]
    fn scopes_must_hold_openid_be_unique_and_be_tokens() {
        let p = problems(&with("scopes", r#"["profile", "email"]"#));
        assert_eq!(p[0].pointer.as_deref(), Some("/scopes"));
        assert_eq!(p[0].message, "must contain \"openid\"");
        let p = problems(&with("scopes", r#"["openid", "email", "email"]"#));
        assert_eq!(p[0].message, "must not list a scope twice");
        let p = problems(&with("scopes", r#"["openid", "a b"]"#));
        assert_eq!(p[0].pointer.as_deref(), Some("/scopes/1"));
        let ok = parse_oidc_config(with("scopes", r#"["openid", "groups"]"#).as_bytes()).unwrap();
        assert_eq!(ok.scopes, ["openid", "groups"]);
    }

    #[test]
    fn roles_include_legacy_names() {
        for (name, role) in [
            ("viewer", Role::Viewer),
            ("developer", Role::Developer),
            ("environment_admin", Role::EnvironmentAdmin),
            ("server_admin", Role::ServerAdmin),
            ("manager", Role::EnvironmentAdmin),
            ("admin", Role::ServerAdmin),
        ] {
            let c =
                parse_oidc_config(with("default_role", &format!("\"{name}\"")).as_bytes()).unwrap();
            assert_eq!(c.default_role, role, "{name}");
        }
        let p = problems(&with("default_role", r#""owner""#));
        assert_eq!(p[0].pointer.as_deref(), Some("/default_role"));
        assert!(p[0].message.starts_with("\"owner\" is not a role"), "{p:?}");
    }

    #[test]
    fn issuer_must_be_https_except_loopback() {
        for ok in [
            "https://idp.example.com",
            "https://idp.example.com/",
            "https://idp.example.com:8443/realms/x",
            "http://127.0.0.1:9000",
            "http://127.0.0.1",
            "http://[::1]:9000/oidc",
            "http://localhost:3000/",
        ] {
            assert!(
                parse_oidc_config(with("issuer", &format!("\"{ok}\"")).as_bytes()).is_ok(),
                "{ok} should be accepted"
            );
        }
        for bad in [
            "http://idp.example.com",
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com/",
            "http://10.0.0.1",
            "ftp://idp.example.com",
            "idp.example.com",
            "https://",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#frag",
            "https://idp.example.com/a b",
        ] {
            let p = problems(&with("issuer", &format!("\"{bad}\"")));
            assert!(
                p.iter().all(|p| p.pointer.as_deref() == Some("/issuer")),
                "{bad}: {p:?}"
            );
        }
    }

    #[test]
    fn local_auth_is_always_allowed_while_sso_is_disabled() {
        let c = parse_oidc_config(
            with("allow_local_auth", "false")
                .replace("\"enabled\":true", "\"enabled\":false")
                .as_bytes(),
        )
        .unwrap();
        assert!(!c.enabled);
        assert!(c.local_auth_allowed());
        let c = parse_oidc_config(with("allow_local_auth", "false").as_bytes()).unwrap();
        assert!(!c.local_auth_allowed());
    }

    #[test]
    fn schema_errors_never_quote_the_secret() {
        for bad in [
            "\"s3cr3t\"".replace("s3cr3t", &"s3cr3t".repeat(1000)),
            "[\"s3cr3t\"]".into(),
            "{\"s3cr3t\": 1}".into(),
        ] {
            let p = problems(&with("client_secret", &bad));
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].pointer.as_deref(), Some("/client_secret"));
            assert!(!format!("{p:?}").contains("s3cr3t"), "{p:?}");
        }
    }

    #[test]
    fn secret_never_shows_in_debug_or_display() {
        let c = parse_oidc_config(MINIMAL.as_bytes()).unwrap();
        let text = format!("{c:?} {}", c.client_secret);
        assert!(!text.contains("s3cr"), "{text}");
    }

    #[test]
    fn edit_distance_suggests_only_near_names() {
        assert_eq!(closest_field("enabeld"), Some("enabled"));
        assert_eq!(closest_field("scope"), Some("scopes"));
        assert_eq!(closest_field("tenant"), None);
    }
}
