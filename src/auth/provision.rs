//! Turning a verified SSO identity into a user: link by (issuer, `sub`), else by email as
//! `link_by_email` allows (by default only a verified one), else auto-provision or refuse. Later logins update the display name and nothing else.
//! Blocking (store writes); the caller flushes before it starts the session.

use crate::audit::{Audit, AuditKind};
use crate::auth::access::{AccessRefusal, Admission, decide};
use crate::setup::config::OidcConfig;
use crate::store::{AccessBinding, Store, StoreError, UserRecord, UserSource};
use crate::vocab::Role;

/// Who the identity provider says signed in, after every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// Every claim received: the ID token's, completed by userinfo's (the access rules read it).
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The ID token as received: kept with the session as the hint of a logout at the provider.
    pub id_token: crate::secret::Secret,
}

/// Why an SSO login found no user to sign in as. Each maps to a page of the guide's
/// Troubleshooting section.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SsoRefusal {
    #[error("the identity provider sent no email address")]
    MissingEmail,
    #[error("the identity provider says the email `{0}` is not verified")]
    EmailNotVerified(String),
    #[error("no user has the email `{0}` and auto-provisioning is disabled")]
    UserNotFound(String),
    #[error("the user `{0}` is disabled")]
    Disabled(String),
    /// A user has this email, but `link_by_email` does not allow taking it over.
    #[error(
        "a user with the email `{email}` exists, and link_by_email `{rule}` does not allow linking it (email_verified: {verified})"
    )]
    NotLinked {
        email: String,
        rule: &'static str,
        verified: String,
    },
    /// A rule of the configuration's access rules refuses the login (contract section 8).
    #[error("refused by {rule}: {0}", rule = .0.rule())]
    Access(AccessRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Candidate usernames tried in order: the derived name, then with 2, 3, ... appended.
const MAX_CANDIDATES: usize = 200;

/// The username an email gives: its local part, lower-cased, `+tag` dropped, only `[a-z0-9]`
/// kept (`john.doe+ci@company.com` -> `johndoe`); `user` when nothing is left.
pub(crate) fn username_from_email(email: &str) -> String {
    let local = email.rsplit_once('@').map_or(email, |(local, _)| local);
    let local = local.split('+').next().unwrap_or_default();
    let name: String = local
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .take(56)
        .collect();
    if name.is_empty() {
        "user".to_owned()
    } else {
        name
    }
}

/// The user `identity` signs in as, linking or creating it as `config` allows.
///
/// Fails with the refusal to show, or a store failure.
pub(crate) async fn sign_in_identity(
    store: &Store,
    config: &OidcConfig,
    identity: &VerifiedIdentity,
) -> Result<UserRecord, SsoRefusal> {
    // The rules first: a refused login creates nothing and changes nothing.
    let admission = decide(&identity.claims, &config.access, config.default_role)
        .map_err(SsoRefusal::Access)?;
    if let Some(username) = store.identity(&identity.issuer, &identity.subject).await? {
        if let Some(user) = store.user(&username).await? {
            return signed_in(store, user, identity, &admission).await;
        }
    }
    let email = identity.email.clone().ok_or(SsoRefusal::MissingEmail)?;
    if identity.email_verified == Some(false) {
        return Err(SsoRefusal::EmailNotVerified(email));
    }
    if let Some(user) = store.user_by_email(&email).await? {
        if user.disabled {
            return Err(SsoRefusal::Disabled(user.username));
        }
        // Linking hands this account to whoever the provider vouches for: only when the
        // provider says it verified the email, unless the operator chose otherwise.
        if !config.link_by_email.allows(identity.email_verified) {
            return Err(SsoRefusal::NotLinked {
                email,
                rule: config.link_by_email.as_str(),
                verified: identity
                    .email_verified
                    .map_or_else(|| "absent".to_owned(), |v| v.to_string()),
            });
        }
        match store
            .link_identity(&identity.issuer, &identity.subject, &user.username)
            .await
        {
            Ok(()) => {
                tracing::info!(username = %user.username, issuer = %identity.issuer, "SSO identity linked by email")
            }
            // Linked by a concurrent login of the same person: fine.
            Err(StoreError::Conflict("identity")) => {}
            Err(e) => return Err(e.into()),
        }
        return signed_in(store, user, identity, &admission).await;
    }
    if !config.auto_provision {
        return Err(SsoRefusal::UserNotFound(email));
    }
    let base = admission
        .username
        .clone()
        .unwrap_or_else(|| username_from_email(&email));
    let role = admission.role.unwrap_or(config.default_role);
    let mut candidates = vec![base.clone()];
    candidates.extend((2..=MAX_CANDIDATES).map(|n| format!("{base}{n}")));
    let fallback = format!(
        "{base}{}",
        &crate::auth::credential::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    candidates.push(fallback);
    let name = identity.name.clone().unwrap_or_else(|| base.clone());
    let template = UserRecord {
        username: String::new(),
        email: email.clone(),
        name,
        source: UserSource::Sso,
        disabled: false,
        created_at: crate::clock::now_rfc3339(),
        access: vec![AccessBinding::for_role(role)],
        password_hash: None,
    };
    match store
        .provision_user(&template, &candidates, &identity.issuer, &identity.subject)
        .await
    {
        Ok(user) => {
            tracing::info!(username = %user.username, role = %role, issuer = %identity.issuer, "SSO user provisioned");
            Audit::success(AuditKind::UserCreated)
                .actor(&user.username)
                .subject(&user.username)
                .reason(format!(
                    "provisioned at first SSO login, role {role}{}",
                    if admission.role.is_some() {
                        " (role_mapping)"
                    } else {
                        ""
                    }
                ))
                .record(store)
                .await;
            Ok(user)
        }
        // A concurrent first login of the same person won the race: sign in as its user.
        Err(StoreError::Conflict("identity" | "email")) => {
            Box::pin(sign_in_identity(store, config, identity)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// What an SSO login of `identity` would do under `config`, without doing it (the settings
/// page's "Check with my account"): nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Preview {
    /// `None` when the login would be admitted; else the refusal, as the user would see it.
    pub refused: Option<String>,
    /// What happens to the account: "signs in as", "links to" or "creates".
    pub action: &'static str,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The access it would have.
    pub access: Option<String>,
    /// The groups read from `groups_claim`.
    pub groups: Vec<String>,
}

/// Decides `identity` as [`sign_in_identity`] would, reading only.
///
/// Fails when the store cannot be read.
pub(crate) async fn preview(
    store: &Store,
    config: &OidcConfig,
    identity: &VerifiedIdentity,
) -> Result<Preview, StoreError> {
    let mut preview = Preview {
        refused: None,
        action: "",
        username: None,
        email: identity.email.clone(),
        name: identity.name.clone(),
        access: None,
        groups: Vec::new(),
    };
    let admission = match decide(&identity.claims, &config.access, config.default_role) {
        Ok(admission) => admission,
        Err(refusal) => {
            // What the groups claim holds, even when a rule refuses (it is what to fix).
            preview.groups = crate::auth::access::groups_found(&identity.claims, &config.access);
            preview.refused = Some(format!("{} ({})", refusal, refusal.rule()));
            return Ok(preview);
        }
    };
    preview.groups.clone_from(&admission.groups);
    let access_of = |user: &UserRecord| {
        admission
            .role
            .map(|r| format!("{r} (role_mapping)"))
            .unwrap_or_else(|| describe_access(&user.access))
    };
    let mut existing = None;
    if let Some(username) = store.identity(&identity.issuer, &identity.subject).await? {
        existing = store.user(&username).await?;
        preview.action = "signs in as";
    }
    if existing.is_none() {
        let Some(email) = identity.email.clone() else {
            preview.refused = Some(SsoRefusal::MissingEmail.to_string());
            return Ok(preview);
        };
        if identity.email_verified == Some(false) {
            preview.refused = Some(SsoRefusal::EmailNotVerified(email).to_string());
            return Ok(preview);
        }
        if let Some(user) = store.user_by_email(&email).await? {
            if !config.link_by_email.allows(identity.email_verified) {
                preview.refused = Some(format!(
                    "a user with this email exists, and link_by_email `{}` does not allow linking it",
                    config.link_by_email.as_str()
                ));
                return Ok(preview);
            }
            preview.action = "links to";
            existing = Some(user);
        }
    }
    match existing {
        Some(user) => {
            if user.disabled {
                preview.refused = Some(SsoRefusal::Disabled(user.username.clone()).to_string());
            }
            preview.access = Some(access_of(&user));
            preview.username = Some(user.username);
        }
        None if !config.auto_provision => {
            preview.refused = Some(
                SsoRefusal::UserNotFound(identity.email.clone().unwrap_or_default()).to_string(),
            );
        }
        None => {
            preview.action = "creates";
            preview.username = Some(admission.username.clone().unwrap_or_else(|| {
                username_from_email(identity.email.as_deref().unwrap_or_default())
            }));
            preview.access = Some(
                admission
                    .role
                    .map(|r| format!("{r} (role_mapping)"))
                    .unwrap_or_else(|| format!("{} (default_role)", config.default_role)),
            );
        }
    }
    Ok(preview)
}

/// A linked user signing in: refused when disabled; the display name follows the provider, and
/// so does the access when the provider manages it.
async fn signed_in(
    store: &Store,
    user: UserRecord,
    identity: &VerifiedIdentity,
    admission: &Admission,
) -> Result<UserRecord, SsoRefusal> {
    if user.disabled {
        return Err(SsoRefusal::Disabled(user.username));
    }
    let user = match admission.role {
        Some(role) => apply_mapped_role(store, user, role).await?,
        None => user,
    };
    match &identity.name {
        Some(name) if *name != user.name && name.chars().count() <= 200 => {
            let updated = store
                .update_user(&user.username, |u| u.name.clone_from(name))
                .await?
                .unwrap_or(user);
            tracing::info!(username = %updated.username, "display name updated from the identity provider");
            Ok(updated)
        }
        _ => Ok(user),
    }
}

/// Makes `role` the user's only access (`role_mapping`), unless it already is; a change that
/// would leave no enabled server_admin is not applied (the login goes on with the old access).
async fn apply_mapped_role(
    store: &Store,
    user: UserRecord,
    role: Role,
) -> Result<UserRecord, SsoRefusal> {
    let mapped = vec![AccessBinding::for_role(role)];
    if user.access == mapped {
        return Ok(user);
    }
    let before = describe_access(&user.access);
    match store
        .update_user(&user.username, |u| u.access.clone_from(&mapped))
        .await
    {
        Ok(Some(updated)) => {
            tracing::info!(username = %updated.username, from = %before, to = %role, "access changed by role_mapping");
            Audit::success(AuditKind::AccessChanged)
                .actor(&updated.username)
                .subject(&updated.username)
                .reason(format!("role_mapping at SSO login: {before} -> {role}"))
                .record(store)
                .await;
            Ok(updated)
        }
        Ok(None) => Ok(user),
        Err(StoreError::LastAdmin(_)) => {
            tracing::warn!(username = %user.username, to = %role, "role_mapping not applied: it would leave no enabled server_admin");
            Audit::failure(
                AuditKind::AccessChanged,
                format!("role_mapping not applied ({before} -> {role}): it would leave no enabled server_admin"),
            )
            .actor(&user.username)
            .subject(&user.username)
            .record(store)
            .await;
            Ok(user)
        }
        Err(e) => Err(e.into()),
    }
}

fn describe_access(access: &[AccessBinding]) -> String {
    let roles: Vec<&str> = access.iter().map(|b| b.role.as_str()).collect();
    if roles.is_empty() {
        "no access".to_owned()
    } else {
        roles.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::secret::Secret;
    use crate::store::test_store;

    #[tokio::test]
    async fn usernames_follow_the_contract_rule() {
        assert_eq!(username_from_email("john.doe@company.com"), "johndoe");
        assert_eq!(username_from_email("John.Doe+ci@company.com"), "johndoe");
        assert_eq!(username_from_email("o'brien_x-y@x.io"), "obrienxy");
        assert_eq!(username_from_email("+tag@x.io"), "user");
        assert_eq!(username_from_email("Ünïcode@x.io"), "ncode");
    }

    fn config(auto_provision: bool) -> OidcConfig {
        OidcConfig {
            enabled: true,
            display_name: "SSO".into(),
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            issuer: "https://idp.example".into(),
            scopes: vec!["openid".into()],
            auto_provision,
            default_role: Role::Viewer,
            allow_local_auth: true,
            link_by_email: Default::default(),
            idp_ca_file: None,
            idp_ca_pem: None,
            access: Default::default(),
            idp_logout: false,
            backchannel_logout_revokes_keys: false,
        }
    }

    fn identity(sub: &str, email: Option<&str>, name: &str) -> VerifiedIdentity {
        VerifiedIdentity {
            issuer: "https://idp.example".into(),
            subject: sub.into(),
            email: email.map(String::from),
            email_verified: Some(true),
            name: Some(name.into()),
            claims: serde_json::json!({"email": email, "name": name})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            id_token: crate::secret::Secret::new("header.payload.signature"),
        }
    }

    #[tokio::test]
    async fn first_login_provisions_later_logins_update_only_the_name() {
        let (_dir, store) = test_store();
        let first = sign_in_identity(
            &store,
            &config(true),
            &identity("1", Some("john.doe@x.io"), "John"),
        )
        .await
        .unwrap();
        assert_eq!(first.username, "johndoe");
        assert_eq!(first.source, UserSource::Sso);
        assert_eq!(first.access, [AccessBinding::for_role(Role::Viewer)]);
        let other = sign_in_identity(
            &store,
            &config(true),
            &identity("2", Some("john.doe@y.io"), "Other John"),
        )
        .await
        .unwrap();
        assert_eq!(other.username, "johndoe2", "collision gets a number");
        let mut changed_config = config(true);
        changed_config.default_role = Role::ServerAdmin;
        let again = sign_in_identity(
            &store,
            &changed_config,
            &identity("1", Some("new@x.io"), "John Doe"),
        )
        .await
        .unwrap();
        assert_eq!(again.username, "johndoe");
        assert_eq!(again.name, "John Doe");
        assert_eq!(
            again.email, "john.doe@x.io",
            "email is not taken from later logins"
        );
        assert_eq!(
            again.access,
            [AccessBinding::for_role(Role::Viewer)],
            "never re-bound"
        );
    }

    #[tokio::test]
    async fn refusals_name_the_guides_errors_and_write_nothing() {
        let (_dir, store) = test_store();
        assert!(matches!(
            sign_in_identity(&store, &config(true), &identity("1", None, "N")).await,
            Err(SsoRefusal::MissingEmail)
        ));
        assert!(matches!(
            sign_in_identity(&store, &config(false), &identity("1", Some("a@x.io"), "N")).await,
            Err(SsoRefusal::UserNotFound(_))
        ));
        let mut unverified = identity("1", Some("a@x.io"), "N");
        unverified.email_verified = Some(false);
        assert!(matches!(
            sign_in_identity(&store, &config(true), &unverified).await,
            Err(SsoRefusal::EmailNotVerified(_))
        ));
        assert_eq!(store.user_count().await.unwrap(), 0);
        assert!(
            store
                .identity("https://idp.example", "1")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn an_existing_user_is_linked_only_as_link_by_email_allows() {
        use crate::setup::config::LinkByEmail;
        let (_dir, store) = test_store();
        let admin = UserRecord {
            username: "admin".into(),
            email: "admin@corp.example".into(),
            name: "Admin".into(),
            source: UserSource::Local,
            disabled: false,
            created_at: "2026-12-01T00:00:00Z".into(),
            access: vec![AccessBinding::for_role(Role::ServerAdmin)],
            password_hash: None,
        };
        store.create_user(&admin).await.unwrap();
        let cases = [
            (LinkByEmail::Verified, None, false),
            (LinkByEmail::Verified, Some(true), true),
            (LinkByEmail::Never, Some(true), false),
            (LinkByEmail::TrustProvider, None, true),
            (LinkByEmail::TrustProvider, Some(false), false),
        ];
        for (i, (rule, verified, links)) in cases.into_iter().enumerate() {
            let sub = format!("attacker-{i}");
            let attacker = VerifiedIdentity {
                email_verified: verified,
                ..identity(&sub, Some("ADMIN@corp.example"), "Mallory")
            };
            let config = OidcConfig {
                link_by_email: rule,
                ..config(true)
            };
            let result = sign_in_identity(&store, &config, &attacker).await;
            assert_eq!(
                result.is_ok(),
                links,
                "{rule:?} with email_verified {verified:?}"
            );
            let linked = store.identity("https://idp.example", &sub).await.unwrap();
            assert_eq!(linked.is_some(), links);
        }
        assert_eq!(
            store.user_count().await.unwrap(),
            1,
            "no second account was provisioned"
        );
    }
}
