//! Settings -> Single Sign-On for server_admin: `GET/PUT/DELETE /api/settings/sso`,
//! `POST /api/settings/sso/test`, `POST /api/settings/sso/reload`.
//!
//! A save writes `oidc.json` atomically (mode 0600) and goes through the one reload path, so the
//! file and the UI never disagree. The client secret is never answered; an omitted one keeps the
//! current secret. Turning local login off while no server_admin can sign in with SSO at the
//! configured issuer is refused (409 `lockout_risk`) unless `?force=true`.

use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::{Caller, require, store_unavailable};
use super::error::ApiError;
use crate::audit::{Audit, AuditKind};
use crate::auth::{Permission, permission::permits};
use crate::blocking::run_blocking;
use crate::fsutil::write_atomic;
use crate::oidc::http::ProviderHttp;
use crate::reload::Trigger;
use crate::setup::config::{
    ConfigProblem, OidcConfig, load_idp_ca, parse_oidc_config, pem_certificates,
};
use crate::state::AppState;
use crate::vocab::ErrorCode;

/// Largest settings body read.
const MAX_BODY_BYTES: u64 = 64 * 1024;

#[derive(Deserialize)]
struct ForceQuery {
    #[serde(default)]
    force: bool,
}

/// The settings routes, all for server_admin.
/// Mounted under `/api/` by [`super::routes`]: the paths here start after it.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state.clone());
    let admin = require(state, Permission::ServerAdmin);
    let get = warp::path!("settings" / "sso")
        .and(warp::get())
        .and(admin.clone())
        .and(with_state.clone())
        .then(|_: Caller, state: AppState| async move {
            warp::reply::json(&settings_view(&state).await).into_response()
        });
    let put = warp::path!("settings" / "sso")
        .and(warp::put())
        .and(admin.clone())
        .and(warp::query::<ForceQuery>())
        .and(super::body::json(MAX_BODY_BYTES))
        .and(with_state.clone())
        .then(save);
    let delete = warp::path!("settings" / "sso")
        .and(warp::delete())
        .and(admin.clone())
        .and(with_state.clone())
        .then(remove);
    let test = warp::path!("settings" / "sso" / "test")
        .and(warp::post())
        .and(admin.clone())
        .and(super::body::bytes(MAX_BODY_BYTES))
        .and(with_state.clone())
        .then(test_connection);
    let reload = warp::path!("settings" / "sso" / "reload")
        .and(warp::post())
        .and(admin)
        .and(with_state)
        .then(reload_from_file);
    get.or(put)
        .unify()
        .or(delete)
        .unify()
        .or(test)
        .unify()
        .or(reload)
        .unify()
        .boxed()
}

/// The live configuration without its secret.
fn config_view(config: &OidcConfig) -> Value {
    json!({
        "enabled": config.enabled,
        "display_name": config.display_name,
        "client_id": config.client_id,
        "issuer": config.issuer,
        "scopes": config.scopes,
        "auto_provision": config.auto_provision,
        "default_role": config.default_role,
        "allow_local_auth": config.allow_local_auth,
        "link_by_email": config.link_by_email,
        "idp_ca_file": config.idp_ca_file,
        "idp_logout": config.idp_logout,
        "backchannel_logout_revokes_keys": config.backchannel_logout_revokes_keys,
        "email_claim": config.access.email_claim,
        "name_claim": config.access.name_claim,
        "username_claim": config.access.username_claim,
        "groups_claim": config.access.groups_claim,
        "required_claims": (!config.access.required_claims.is_empty()).then(|| {
            config.access.required_claims.iter()
                .map(|(claim, values)| (claim.as_str().to_owned(), json!(values)))
                .collect::<serde_json::Map<String, Value>>()
        }),
        "allowed_email_domains": (!config.access.allowed_email_domains.is_empty())
            .then_some(&config.access.allowed_email_domains),
        "allowed_groups": (!config.access.allowed_groups.is_empty())
            .then_some(&config.access.allowed_groups),
        "role_mapping": (!config.access.role_mapping.is_empty()).then(|| {
            config.access.role_mapping.iter()
                .map(|(group, role)| json!({"group": group, "role": role}))
                .collect::<Vec<Value>>()
        }),
        "access_managed_by_provider": config.access.manages_access(),
    })
}

/// Whether the settings can be saved here: the setup repository's folder is writable (a
/// ConfigMap mount or a checkout kept by a git sidecar is not: the file is changed in git).
fn setup_repo_writable(state: &AppState) -> bool {
    crate::fsutil::is_writable_dir(state.reloader.root())
}

/// 409 `setup_repo_read_only`.
fn read_only() -> Response {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::SetupRepoReadOnly,
        "the setup repository is read-only on this server (a mounted ConfigMap or Secret, or a checkout kept current from git): change oidc.json in the setup repository's git instead; every replica picks it up",
    )
    .response()
}

/// `GET /api/settings/sso`'s answer.
async fn settings_view(state: &AppState) -> Value {
    let live = state.reloader.live();
    let replicas = match state.replicas().await {
        Ok(replicas) => replicas,
        Err(e) => {
            tracing::warn!(error = %e, "listing the replicas failed");
            Vec::new()
        }
    };
    let replicas: Vec<Value> = replicas
        .into_iter()
        .map(|mut r| {
            let this = r.id == *state.replica_id;
            if this {
                // This replica's live configuration, not the last heartbeat's.
                r.config_generation = live.generation;
                r.config_sha256.clone_from(&live.sha256);
            }
            json!({
                "id": r.id,
                "version": r.version,
                "listen": r.listen,
                "config_generation": r.config_generation,
                "config_sha256": r.config_sha256,
                "last_seen": humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.last_seen)
                ).to_string(),
                "this": this,
                "same_config": r.config_sha256 == live.sha256,
            })
        })
        .collect();
    json!({
        "setup_repo_writable": setup_repo_writable(state),
        "replicas": replicas,
        "config_sha256": live.sha256,
        "config": live.oidc.as_ref().map(config_view),
        "client_secret_set": live.oidc.as_ref().is_some_and(|c| !c.client_secret.expose().is_empty()),
        "redirect_uri": state.redirect_uri(),
        "status": state.reload_status(),
        "recent_failures": state.sso_failures.list(),
    })
}

fn invalid(problems: &[ConfigProblem]) -> Response {
    let details: Vec<Value> = problems
        .iter()
        .map(|p| json!({"pointer": p.pointer.clone().unwrap_or_default(), "message": p.message}))
        .collect();
    let body = json!({
        "error": ErrorCode::InvalidConfig,
        "message": "the SSO settings are not valid: see details",
        "details": details,
    });
    warp::reply::with_status(warp::reply::json(&body), StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()
}

/// The submitted object with the current secret filled in when it was left out, validated.
async fn complete(state: &AppState, mut body: Value) -> Result<(Value, OidcConfig), Response> {
    let Some(object) = body.as_object_mut() else {
        return Err(invalid(&[ConfigProblem {
            message: "the settings must be a JSON object".into(),
            line: None,
            column: None,
            pointer: Some(String::new()),
        }]));
    };
    // The optional access fields the page sends as null (or empty) when unset: left out of
    // the file, as if never written.
    // Settings the page has no control for are kept from the current file when left out (an
    // explicit null removes them), so a save from the page never drops them.
    if let Some(current) = state.reloader.live().oidc.as_ref() {
        let kept = [
            ("idp_ca_file", current.idp_ca_file.clone().map(Value::from)),
            (
                "idp_logout",
                current.idp_logout.then_some(Value::Bool(true)),
            ),
            (
                "backchannel_logout_revokes_keys",
                current
                    .backchannel_logout_revokes_keys
                    .then_some(Value::Bool(true)),
            ),
        ];
        for (field, value) in kept {
            if let (false, Some(value)) = (object.contains_key(field), value) {
                object.insert(field.into(), value);
            }
        }
    }
    for field in [
        "idp_ca_file",
        "idp_logout",
        "backchannel_logout_revokes_keys",
        "username_claim",
        "required_claims",
        "allowed_email_domains",
        "allowed_groups",
        "role_mapping",
    ] {
        let unset = match object.get(field) {
            Some(Value::Null) => true,
            Some(Value::Array(items)) => items.is_empty(),
            Some(Value::Object(map)) => map.is_empty(),
            _ => false,
        };
        if unset {
            object.remove(field);
        }
    }
    let omitted = object
        .get("client_secret")
        .is_none_or(|s| s.as_str() == Some(""));
    if omitted {
        object.remove("client_secret");
        if let Some(current) = state.reloader.live().oidc.as_ref() {
            // The saved secret goes only to the provider it was saved for: with another issuer
            // or client ID it would be sent, in the token request, to whoever runs that one.
            let same =
                |field: &str, value: &str| object.get(field).and_then(Value::as_str) == Some(value);
            if !(same("issuer", &current.issuer) && same("client_id", &current.client_id)) {
                return Err(invalid(&[ConfigProblem {
                    message: "enter the client secret again: the issuer or client ID changed, and the saved secret is only ever sent to the provider it was saved for".into(),
                    line: None,
                    column: None,
                    pointer: Some("/client_secret".into()),
                }]));
            }
            object.insert(
                "client_secret".into(),
                current.client_secret.expose().into(),
            );
        }
    }
    let bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
    let root = state.reloader.root().to_owned();
    let parsed = run_blocking(move || -> Result<OidcConfig, Vec<ConfigProblem>> {
        let mut config = parse_oidc_config(&bytes)?;
        load_idp_ca(&mut config, &root).map_err(|problem| vec![problem])?;
        Ok(config)
    })
    .await;
    match parsed {
        Ok(config) => Ok((body, config)),
        Err(problems) => Err(invalid(&problems)),
    }
}

async fn save(admin: Caller, force: ForceQuery, body: Value, state: AppState) -> Response {
    if !setup_repo_writable(&state) {
        return read_only();
    }
    let (body, config) = match complete(&state, body).await {
        Ok(done) => done,
        Err(response) => return response,
    };
    if config.enabled && !config.allow_local_auth && !force.force {
        match sso_admins(&state, &config.issuer).await {
            Ok(0) => {
                return ApiError::new(StatusCode::CONFLICT, ErrorCode::LockoutRisk, "no server_admin has signed in with SSO at this issuer yet: with local login off, nobody could manage this server. Sign in with SSO as an admin first, or save with ?force=true").response();
            }
            Ok(_) => {}
            Err(e) => return e.response(),
        }
    }
    let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
    bytes.push(b'\n');
    let path = state.reloader.oidc_path();
    let written = run_blocking(move || write_atomic(&path, &bytes, 0o600)).await;
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot write oidc.json");
        if crate::fsutil::is_read_only_error(&e) {
            return read_only();
        }
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::WriteFailed,
            "oidc.json could not be written; the settings are unchanged",
        )
        .response();
    }
    let outcome = state.reload(Trigger::Api).await;
    tracing::info!(by = %admin.user.username, result = ?outcome.result, "SSO settings saved from the API");
    Audit::success(AuditKind::SettingsSaved)
        .actor(&admin.user.username)
        .subject("oidc.json")
        .reason(format!(
            "enabled {}, issuer {}, allow_local_auth {}{}",
            config.enabled,
            config.issuer,
            config.allow_local_auth,
            if force.force { " (forced)" } else { "" }
        ))
        .record(&state.store)
        .await;
    warp::reply::json(&settings_view(&state).await).into_response()
}

/// How many enabled server_admins have an SSO identity at `issuer`.
async fn sso_admins(state: &AppState, issuer: &str) -> Result<usize, ApiError> {
    let linked = state
        .store
        .users_with_identity_at(issuer)
        .await
        .map_err(store_unavailable)?;
    let mut count = 0;
    for username in linked {
        if let Some(user) = state
            .store
            .user(&username)
            .await
            .map_err(store_unavailable)?
        {
            if permits(&user, Permission::ServerAdmin) {
                count += 1;
            }
        }
    }
    Ok(count)
}

async fn remove(admin: Caller, state: AppState) -> Response {
    if !setup_repo_writable(&state) {
        return read_only();
    }
    let path = state.reloader.oidc_path();
    let removed = run_blocking(move || match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    })
    .await;
    if let Err(e) = removed {
        tracing::error!(error = %e, "cannot remove oidc.json");
        if crate::fsutil::is_read_only_error(&e) {
            return read_only();
        }
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::WriteFailed,
            "oidc.json could not be removed",
        )
        .response();
    }
    let outcome = state.reload(Trigger::Api).await;
    tracing::info!(by = %admin.user.username, result = ?outcome.result, "SSO removed from the API");
    Audit::success(AuditKind::SettingsRemoved)
        .actor(&admin.user.username)
        .subject("oidc.json")
        .record(&state.store)
        .await;
    warp::reply::json(&settings_view(&state).await).into_response()
}

async fn reload_from_file(admin: Caller, state: AppState) -> Response {
    let outcome = state.reload(Trigger::Api).await;
    tracing::info!(by = %admin.user.username, result = ?outcome.result, "reload from the API");
    let mut body = serde_json::to_value(&outcome.status).unwrap_or_default();
    body["result"] = serde_json::to_value(outcome.result).unwrap_or_default();
    warp::reply::json(&body).into_response()
}

async fn test_connection(
    _admin: Caller,
    body: warp::hyper::body::Bytes,
    state: AppState,
) -> Response {
    let config = if body.iter().all(u8::is_ascii_whitespace) || body.as_ref() == b"{}" {
        match state.reloader.live().oidc.clone() {
            Some(config) => config,
            None => {
                return ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidConfig,
                    "there is no SSO configuration to test: send one",
                )
                .response();
            }
        }
    } else {
        let value: Value = match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(_) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    "the body must be an oidc.json object",
                )
                .response();
            }
        };
        match complete(&state, value).await {
            Ok((_, config)) => config,
            Err(response) => return response,
        }
    };
    let http = match state.provider.http_for(&config) {
        Ok(http) => http.confined_to(&config.issuer),
        Err(e) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidConfig,
                &e,
            )
            .response();
        }
    };
    let mut checks = Vec::new();
    if let (Some(file), Some(pem)) = (&config.idp_ca_file, &config.idp_ca_pem) {
        checks.push(check(
            "trust",
            true,
            format!(
                "trusting the system's certificate authorities and {} in {file}",
                match pem_certificates(pem) {
                    1 => "1 certificate".to_owned(),
                    n => format!("{n} certificates"),
                }
            ),
        ));
    }
    checks.extend(run_checks(&http, &config, &state.redirect_uri()).await);
    let ok = checks.iter().all(|c| c["ok"] == true);
    warp::reply::json(&json!({ "ok": ok, "checks": checks })).into_response()
}

/// Whether the provider signs ID tokens with an algorithm we accept; names the ones it offers.
fn signing_check(metadata: &Value) -> Value {
    let offered: Vec<&str> = metadata["id_token_signing_alg_values_supported"]
        .as_array()
        .map(|algs| algs.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let accepted = |alg: &str| {
        serde_json::from_value::<openidconnect::core::CoreJwsSigningAlgorithm>(Value::String(
            alg.to_owned(),
        ))
        .is_ok_and(|a| crate::oidc::jws::ALLOWED_ALGS.contains(&a))
    };
    let listed = offered.join(", ");
    if offered.is_empty() {
        check(
            "signing",
            false,
            "discovery lists no id_token_signing_alg_values_supported (RS256 is what this server expects)",
        )
    } else if offered.iter().any(|a| accepted(a)) {
        check("signing", true, format!("ID tokens signed with {listed}"))
    } else {
        check(
            "signing",
            false,
            format!(
                "the provider offers only {listed}: set it to sign ID tokens with RS256 (or another RS, PS, ES or EdDSA algorithm); HMAC and unsigned tokens are refused"
            ),
        )
    }
}

/// Informational, when the access rules read claims beyond the email and name: which of them
/// the provider lists in `claims_supported` (custom claims often are not listed, so nothing
/// fails here; "Check with my account" shows what an account really receives).
fn claims_check(metadata: &Value, config: &OidcConfig) -> Option<Value> {
    let rules = &config.access;
    let mut wanted: Vec<&str> = rules
        .required_claims
        .iter()
        .map(|(claim, _)| claim.as_str())
        .collect();
    if rules.needs_groups() {
        wanted.push(rules.groups_claim.as_str());
    }
    if let Some(username) = &rules.username_claim {
        wanted.push(username.as_str());
    }
    if wanted.is_empty() {
        return None;
    }
    // A JSON Pointer's claim is its first segment.
    let top = |claim: &str| -> String {
        claim
            .strip_prefix('/')
            .map_or(claim, |rest| rest.split('/').next().unwrap_or(rest))
            .replace("~1", "/")
            .replace("~0", "~")
    };
    let listed: Vec<&str> = metadata["claims_supported"]
        .as_array()
        .map(|claims| claims.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let (known, unknown): (Vec<String>, Vec<String>) = wanted
        .iter()
        .map(|claim| top(claim))
        .partition(|claim| listed.contains(&claim.as_str()));
    let detail = if unknown.is_empty() {
        format!(
            "the provider lists the claims the access rules read ({})",
            known.join(", ")
        )
    } else {
        format!(
            "the provider does not list {} in claims_supported (custom claims often are not): use \"Check with my account\" to see what your account receives",
            unknown.join(", ")
        )
    };
    Some(check("claims", true, detail))
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Value {
    json!({ "name": name, "ok": ok, "detail": detail.into() })
}

async fn get_json(http: &ProviderHttp, url: &str) -> Result<Value, String> {
    use openidconnect::AsyncHttpClient;
    let request = openidconnect::http::Request::get(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let response = http.call(request).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{url} answered HTTP {}", response.status()));
    }
    serde_json::from_slice(response.body()).map_err(|_| format!("{url} did not answer JSON"))
}

/// Test Connection: discovery, issuer, JWKS, code flow, S256, email, the redirect URI.
async fn run_checks(http: &ProviderHttp, config: &OidcConfig, redirect_uri: &str) -> Vec<Value> {
    let discovery_url = crate::oidc::discovery_url(&config.issuer);
    let mut checks = Vec::new();
    let metadata = match get_json(http, &discovery_url).await {
        Ok(metadata) => {
            checks.push(check("discovery", true, format!("fetched {discovery_url}")));
            metadata
        }
        Err(e) => {
            checks.push(check("discovery", false, e));
            checks.push(check(
                "redirect_uri",
                true,
                format!("register {redirect_uri} at the identity provider"),
            ));
            return checks;
        }
    };
    let issuer = metadata["issuer"].as_str().unwrap_or_default();
    checks.push(if issuer == config.issuer {
        check("issuer", true, format!("the provider names itself {issuer}"))
    } else {
        check("issuer", false, format!("the provider names itself `{issuer}`, not `{}`: set issuer to exactly its value (watch the trailing slash)", config.issuer))
    });
    let jwks = match metadata["jwks_uri"].as_str() {
        Some(uri) => match get_json(http, uri).await {
            Ok(jwks) => {
                let usable = jwks["keys"].as_array().map_or(0, |keys| {
                    keys.iter()
                        .filter(|k| {
                            matches!(k["kty"].as_str(), Some("RSA" | "EC" | "OKP"))
                                && k["use"].as_str() != Some("enc")
                        })
                        .count()
                });
                if usable > 0 {
                    check("jwks", true, format!("{usable} signing key(s) at {uri}"))
                } else {
                    check("jwks", false, format!("no usable signing key at {uri}"))
                }
            }
            Err(e) => check("jwks", false, e),
        },
        None => check("jwks", false, "discovery has no jwks_uri"),
    };
    checks.push(jwks);
    let listed = |field: &str, value: &str| {
        metadata[field]
            .as_array()
            .is_some_and(|values| values.iter().any(|v| v.as_str() == Some(value)))
    };
    checks.push(if listed("response_types_supported", "code") {
        check(
            "code_flow",
            true,
            "the authorization code flow is supported",
        )
    } else {
        check(
            "code_flow",
            false,
            "response_types_supported does not list `code`",
        )
    });
    checks.push(signing_check(&metadata));
    checks.push(if listed("code_challenge_methods_supported", "S256") {
        check("pkce_s256", true, "PKCE with S256 is supported")
    } else {
        check("pkce_s256", false, "code_challenge_methods_supported does not list S256; logins send PKCE anyway and may fail")
    });
    let email_offered = listed("scopes_supported", "email") || listed("claims_supported", "email");
    let email_requested = config.scopes.iter().any(|s| s == "email");
    checks.push(match (email_offered, email_requested) {
        (true, true) => check("email", true, "the email scope is requested and supported"),
        (_, false) => check(
            "email",
            false,
            "add `email` to scopes, or users cannot be matched and provisioned",
        ),
        (false, true) => check(
            "email",
            false,
            "the provider lists neither an email scope nor an email claim",
        ),
    });
    checks.push(check(
        "redirect_uri",
        true,
        format!("register {redirect_uri} at the identity provider"),
    ));
    if let Some(claims) = claims_check(&metadata, config) {
        checks.push(claims);
    }
    let public_url = redirect_uri.trim_end_matches("/auth/oidc/callback");
    // Informational: a provider without these still signs users in.
    checks.push(match metadata["end_session_endpoint"].as_str() {
        Some(endpoint) => check(
            "logout",
            true,
            format!(
                "the provider offers logout at {endpoint}{}; register {public_url}/login as a post-logout redirect URI",
                if config.idp_logout {
                    ""
                } else {
                    " (set idp_logout to sign out there too)"
                }
            ),
        ),
        None => check(
            "logout",
            !config.idp_logout,
            "the provider has no end_session_endpoint: sign-out only ends the session here",
        ),
    });
    let backchannel = metadata["backchannel_logout_supported"] == true
        || metadata["backchannel_logout_supported"] == "true";
    checks.push(check(
        "backchannel_logout",
        true,
        if backchannel {
            format!(
                "the provider supports back-channel logout: register {public_url}/auth/oidc/backchannel-logout as the back-channel logout URI (session required: {})",
                metadata["backchannel_logout_session_supported"] == true
            )
        } else {
            "the provider does not announce back-channel logout: sessions here end at sign-out or expiry".to_owned()
        },
    ));
    checks
}
