//! Who may sign in with SSO and with which access, decided from the identity provider's claims
//! (contract section 8): one pure function, [`decide`], from the claims and the configured
//! [`AccessRules`] to an admission (with the email, name, username and, when the provider
//! manages access, the role) or the rule that refuses. No I/O: the login flow, the preview page
//! and the tests call the same function.
//!
//! Lessons from peers' bugs are rules here: a missing groups claim refuses and never demotes;
//! domains match exactly (no suffix match); Entra ID's group overage is refused with what to
//! configure; the mapping applies at the first login too (the caller uses the role for new users).

use serde_json::{Map, Value};

use crate::setup::config::{AccessRules, ClaimPath};
use crate::vocab::Role;

/// What the claims give a login that the rules admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    pub email: Option<String>,
    pub name: Option<String>,
    /// From `username_claim`, normalised; `None`: the caller derives one from the email.
    pub username: Option<String>,
    /// The groups found (empty when the rules need none and the claim is absent).
    pub groups: Vec<String>,
    /// `Some` when the provider manages access (`role_mapping`): the highest mapped role, else
    /// the default role.
    pub role: Option<Role>,
}

/// The rule that refuses a login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AccessRefusal {
    #[error("the required claim `{0}` is missing or has a value that is not allowed")]
    RequiredClaim(String),
    #[error("the email's domain is not among allowed_email_domains")]
    EmailDomain,
    #[error("the user is in none of allowed_groups")]
    NotInAllowedGroups,
    #[error(
        "Missing groups claim: the identity provider sent no `{0}` claim, which allowed_groups or role_mapping need"
    )]
    MissingGroupsClaim(String),
    #[error("the groups claim `{0}` is not a list of strings")]
    MalformedGroupsClaim(String),
    #[error(
        "the identity provider sent a reference to the groups instead of the groups (Entra ID group overage: the user is in more groups than fit in a token): in the app registration, set the groups claim to \"Groups assigned to the application\" and assign the groups that matter, or map app roles with groups_claim \"roles\""
    )]
    GroupOverage,
}

impl AccessRefusal {
    /// The rule's name, for the audit trail and the page (never the allowed values).
    pub(crate) fn rule(&self) -> &'static str {
        match self {
            AccessRefusal::RequiredClaim(_) => "required_claims",
            AccessRefusal::EmailDomain => "allowed_email_domains",
            AccessRefusal::NotInAllowedGroups => "allowed_groups",
            AccessRefusal::MissingGroupsClaim(_)
            | AccessRefusal::MalformedGroupsClaim(_)
            | AccessRefusal::GroupOverage => "groups_claim",
        }
    }
}

/// Decides a login from its `claims` (the ID token's, completed by userinfo).
///
/// Fails with the first rule that refuses, in the order: required claims, email domain,
/// groups claim, allowed groups.
pub(crate) fn decide(
    claims: &Map<String, Value>,
    rules: &AccessRules,
    default_role: Role,
) -> Result<Admission, AccessRefusal> {
    for (claim, allowed) in &rules.required_claims {
        if !claim.find(claims).is_some_and(|v| matches_one(v, allowed)) {
            return Err(AccessRefusal::RequiredClaim(claim.as_str().to_owned()));
        }
    }
    let email = text(&rules.email_claim, claims);
    if !rules.allowed_email_domains.is_empty() {
        let domain = email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, domain)| domain.to_ascii_lowercase());
        if !domain.is_some_and(|d| rules.allowed_email_domains.contains(&d)) {
            return Err(AccessRefusal::EmailDomain);
        }
    }
    let groups = groups(claims, &rules.groups_claim, rules.needs_groups())?;
    if !rules.allowed_groups.is_empty() && !groups.iter().any(|g| rules.allowed_groups.contains(g))
    {
        return Err(AccessRefusal::NotInAllowedGroups);
    }
    let role = rules.manages_access().then(|| {
        rules
            .role_mapping
            .iter()
            .filter(|(group, _)| groups.contains(group))
            .map(|(_, role)| *role)
            .max()
            .unwrap_or(default_role)
    });
    Ok(Admission {
        email,
        name: text(&rules.name_claim, claims),
        username: rules
            .username_claim
            .as_ref()
            .and_then(|c| text(c, claims))
            .and_then(|u| normalise_username(&u)),
        groups,
        role,
    })
}

/// The groups the claims hold at `groups_claim` (for the preview), whatever the rules need.
pub(crate) fn groups_found(claims: &Map<String, Value>, rules: &AccessRules) -> Vec<String> {
    groups(claims, &rules.groups_claim, false).unwrap_or_default()
}

/// A string claim (or the first string of an array), trimmed; `None` when absent or blank.
fn text(claim: &ClaimPath, claims: &Map<String, Value>) -> Option<String> {
    let value = match claim.find(claims)? {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().find_map(Value::as_str)?.to_owned(),
        _ => return None,
    };
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Whether a claim equals one of `allowed` (an array: contains one). Numbers and booleans
/// compare by their JSON text (`"1"` matches `1`).
fn matches_one(value: &Value, allowed: &[String]) -> bool {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(scalar)
            .any(|v| allowed.contains(&v)),
        other => scalar(other).is_some_and(|v| allowed.contains(&v)),
    }
}

/// The groups: an array of strings (numbers count as their text; other items are ignored) or
/// one string. Absent or malformed is a refusal only when the rules need groups.
fn groups(
    claims: &Map<String, Value>,
    claim: &ClaimPath,
    needed: bool,
) -> Result<Vec<String>, AccessRefusal> {
    let found = match claim.find(claims) {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
        ),
        Some(Value::String(one)) => Some(vec![one.clone()]),
        Some(_) if needed => {
            return Err(AccessRefusal::MalformedGroupsClaim(
                claim.as_str().to_owned(),
            ));
        }
        Some(_) | None => None,
    };
    match found {
        Some(groups) => Ok(groups),
        None if !needed => Ok(Vec::new()),
        None if overage(claims, claim) => Err(AccessRefusal::GroupOverage),
        None => Err(AccessRefusal::MissingGroupsClaim(claim.as_str().to_owned())),
    }
}

/// Whether Entra ID announced a group overage for `claim`: `_claim_names` names it (or
/// `groups`) instead of the claim being sent.
fn overage(claims: &Map<String, Value>, claim: &ClaimPath) -> bool {
    claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key(claim.as_str()) || names.contains_key("groups"))
}

/// A username from a claim by the username rule: lower-cased, only `[a-z0-9._-]` kept, at
/// most 56 characters, starting with a letter or digit; `None` when nothing is left.
pub(crate) fn normalise_username(raw: &str) -> Option<String> {
    let local = raw.rsplit_once('@').map_or(raw, |(local, _)| local);
    let name: String = local
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(56)
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn rules(extra: Value) -> AccessRules {
        let mut file = json!({
            "enabled": true, "client_id": "c", "client_secret": "s",
            "issuer": "https://idp.example.com/",
        });
        for (k, v) in extra.as_object().unwrap() {
            file[k] = v.clone();
        }
        crate::setup::config::parse_oidc_config(file.to_string().as_bytes())
            .unwrap()
            .access
    }

    #[test]
    fn without_rules_everyone_is_admitted_as_before() {
        let admitted = decide(
            &claims(json!({"email": " a@x.io ", "name": "A"})),
            &AccessRules::default(),
            Role::Developer,
        )
        .unwrap();
        assert_eq!(admitted.email.as_deref(), Some("a@x.io"));
        assert_eq!(admitted.name.as_deref(), Some("A"));
        assert_eq!((admitted.role, admitted.username), (None, None));
        // Groups of any shape are ignored when no rule needs them.
        for groups in [json!(5), json!({"a": 1}), json!(null)] {
            assert!(
                decide(
                    &claims(json!({"groups": groups})),
                    &AccessRules::default(),
                    Role::Viewer
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn claim_locations_take_names_with_dots_and_slashes_and_json_pointers() {
        let r = rules(json!({
            "email_claim": "https://example.com/email",
            "name_claim": "/profile/names/0",
            "username_claim": "preferred_username",
            "groups_claim": "/realm_access/roles",
            "allowed_groups": ["dev"],
        }));
        let c = claims(json!({
            "https://example.com/email": "B@X.io",
            "profile": {"names": ["Bee", "B"]},
            "preferred_username": "Bee.Keeper@corp",
            "realm_access": {"roles": ["dev", "x"]},
        }));
        let a = decide(&c, &r, Role::Viewer).unwrap();
        assert_eq!(a.email.as_deref(), Some("B@X.io"));
        assert_eq!(a.name.as_deref(), Some("Bee"));
        assert_eq!(a.username.as_deref(), Some("bee.keeper"));
        assert_eq!(a.groups, ["dev", "x"]);
    }

    #[test]
    fn required_claims_need_one_of_the_values() {
        let r = rules(json!({"required_claims": {"hd": ["company.com"], "tid": ["t1", "t2"]}}));
        let ok = claims(json!({"hd": "company.com", "tid": ["t0", "t2"]}));
        assert!(decide(&ok, &r, Role::Viewer).is_ok());
        for bad in [
            json!({"tid": "t1"}),
            json!({"hd": "other.com", "tid": "t1"}),
            json!({"hd": "company.com", "tid": null}),
            json!({"hd": ["x"], "tid": "t1"}),
            json!({"hd": {"v": "company.com"}, "tid": "t1"}),
        ] {
            let e = decide(&claims(bad.clone()), &r, Role::Viewer).unwrap_err();
            assert_eq!(e.rule(), "required_claims", "{bad}");
        }
    }

    #[test]
    fn email_domains_match_exactly_after_the_last_at() {
        let r = rules(json!({"allowed_email_domains": ["Company.com"]}));
        for ok in [
            "a@company.com",
            "a@COMPANY.COM",
            "\"x@evil.com\"@company.com",
        ] {
            assert!(
                decide(&claims(json!({"email": ok})), &r, Role::Viewer).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            json!({"email": "a@sub.company.com"}),
            json!({"email": "a@company.com.evil.com"}),
            json!({"email": "a@evilcompany.com"}),
            json!({"email": "company.com"}),
            json!({"email": "a@company.com@evil.com"}),
            json!({}),
            json!({"email": 7}),
        ] {
            let e = decide(&claims(bad.clone()), &r, Role::Viewer).unwrap_err();
            assert_eq!(e, AccessRefusal::EmailDomain, "{bad}");
        }
    }

    #[test]
    fn groups_of_every_shape() {
        let r = rules(json!({"allowed_groups": ["eng", "42"]}));
        let decide_groups =
            |groups: Value| decide(&claims(json!({"groups": groups})), &r, Role::Viewer);
        assert!(decide_groups(json!(["x", "eng"])).is_ok());
        assert!(decide_groups(json!("eng")).is_ok(), "one string");
        assert!(
            decide_groups(json!([42])).is_ok(),
            "a number counts as its text"
        );
        assert_eq!(
            decide_groups(json!([])).unwrap_err(),
            AccessRefusal::NotInAllowedGroups
        );
        assert_eq!(
            decide_groups(json!(["ENG"])).unwrap_err(),
            AccessRefusal::NotInAllowedGroups
        );
        assert_eq!(
            decide_groups(json!([{"name": "eng"}])).unwrap_err(),
            AccessRefusal::NotInAllowedGroups
        );
        assert!(matches!(
            decide_groups(json!(5)).unwrap_err(),
            AccessRefusal::MalformedGroupsClaim(_)
        ));
        assert!(matches!(
            decide_groups(json!({"eng": true})).unwrap_err(),
            AccessRefusal::MalformedGroupsClaim(_)
        ));
        assert!(matches!(
            decide(&claims(json!({})), &r, Role::Viewer).unwrap_err(),
            AccessRefusal::MissingGroupsClaim(_)
        ));
        assert!(matches!(
            decide(&claims(json!({"groups": null})), &r, Role::Viewer).unwrap_err(),
            AccessRefusal::MissingGroupsClaim(_)
        ));
        let overage = claims(json!({
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/..."}},
        }));
        assert_eq!(
            decide(&overage, &r, Role::Viewer).unwrap_err(),
            AccessRefusal::GroupOverage
        );
    }

    #[test]
    fn the_highest_mapped_role_wins_else_the_default() {
        let r = rules(json!({"role_mapping": [
            {"group": "admins", "role": "admin"},
            {"group": "devs", "role": "developer"},
            {"group": "leads", "role": "manager"},
        ]}));
        let role = |groups: Value| {
            decide(&claims(json!({"groups": groups})), &r, Role::Viewer)
                .unwrap()
                .role
        };
        assert_eq!(role(json!(["devs", "leads"])), Some(Role::EnvironmentAdmin));
        assert_eq!(role(json!(["devs", "admins"])), Some(Role::ServerAdmin));
        assert_eq!(role(json!(["devs"])), Some(Role::Developer));
        assert_eq!(
            role(json!(["others"])),
            Some(Role::Viewer),
            "the default role"
        );
        assert_eq!(
            role(json!([])),
            Some(Role::Viewer),
            "an empty claim is no group"
        );
    }

    #[test]
    fn usernames_follow_the_username_rule() {
        assert_eq!(normalise_username("John.Doe").as_deref(), Some("john.doe"));
        assert_eq!(
            normalise_username("j_d-1@corp.com").as_deref(),
            Some("j_d-1")
        );
        assert_eq!(normalise_username("..x").as_deref(), Some("x"));
        assert_eq!(normalise_username("Ünï").as_deref(), Some("n"));
        assert_eq!(normalise_username("Ü"), None);
        assert_eq!(normalise_username(""), None);
    }

    /// A claim that is missing (or malformed) never lowers anyone's access: whatever the
    /// configuration, removing the groups claim from a login either refuses it (so nothing
    /// changes) or, when no rule needs groups, decides the same access as before.
    #[test]
    fn a_missing_groups_claim_never_lowers_access() {
        let names = ["a", "b", "c", "d"];
        let roles = [
            Role::Viewer,
            Role::Developer,
            Role::EnvironmentAdmin,
            Role::ServerAdmin,
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..2000 {
            let mapping: Vec<Value> = (0..next(4))
                .map(|_| json!({"group": names[next(4) as usize], "role": roles[next(4) as usize].as_str()}))
                .collect();
            let mut extra = json!({"default_role": roles[next(4) as usize].as_str()});
            if !mapping.is_empty() {
                extra["role_mapping"] = json!(mapping);
            }
            if next(2) == 0 {
                extra["allowed_groups"] = json!([names[next(4) as usize]]);
            }
            let mut file = json!({"enabled": true, "client_id": "c", "client_secret": "s", "issuer": "https://idp.example.com/"});
            for (k, v) in extra.as_object().unwrap() {
                file[k] = v.clone();
            }
            let config =
                crate::setup::config::parse_oidc_config(file.to_string().as_bytes()).unwrap();
            let groups: Vec<&str> = names.iter().copied().filter(|_| next(2) == 0).collect();
            let with = decide(
                &claims(json!({"groups": groups})),
                &config.access,
                config.default_role,
            );
            for without in [
                json!({}),
                json!({"groups": null}),
                json!({"groups": 3}),
                json!({"groups": {"x": 1}}),
            ] {
                let decided = decide(&claims(without), &config.access, config.default_role);
                match (&with, decided) {
                    (_, Err(_)) => {}
                    (Ok(before), Ok(after)) => {
                        assert!(!config.access.needs_groups(), "{file}");
                        assert_eq!(before.role, after.role, "{file}");
                    }
                    (Err(_), Ok(_)) => assert!(!config.access.needs_groups(), "{file}"),
                }
            }
        }
    }
}
