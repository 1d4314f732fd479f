//! Access from the identity provider (contract section 8) through the real daemon and the
//! hostile test provider: required claims, exact email domains, allowed groups, the role
//! mapping (promotion and demotion across logins, from the first login on), claims of every
//! shape, Entra ID's group overage, the last admin kept, and every refusal creating nothing and
//! audited with its rule.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::{Browser, location};
use crate::support::idp::{Behaviour, IdpUser, TestIdp};
use crate::support::{Daemon, Setup};

const CLIENT_ID: &str = "coderflow-access";
const SECRET: &str = "access-secret";

struct Rig {
    idp: TestIdp,
    daemon: Daemon,
    admin: String,
}

impl Rig {
    /// A daemon whose `oidc.json` has the rules in `extra`.
    async fn start(extra: Value) -> Rig {
        let idp = TestIdp::start(CLIENT_ID, SECRET).await;
        let setup = Setup::git();
        let mut oidc = json!({"enabled": true, "client_id": CLIENT_ID, "client_secret": SECRET,
                              "issuer": idp.issuer(), "default_role": "viewer"});
        for (k, v) in extra.as_object().unwrap() {
            oidc[k] = v.clone();
        }
        setup.write_oidc(&oidc.to_string());
        let daemon = setup.start();
        daemon
            .wait_for_status("provider ready", |s| {
                s.provider.state == coderflow::oidc::ProviderState::Ready
            })
            .await;
        let admin = daemon.admin_key().await;
        Rig { idp, daemon, admin }
    }

    /// Signs `email` in with `claims` in the ID token; the callback's answer and the browser.
    async fn login(&self, email: &str, claims: Value) -> (reqwest::Response, Browser) {
        self.idp.login_as(IdpUser::from_email(email, "Someone"));
        self.idp.behave(|b| {
            *b = Behaviour::default();
            b.id_token_claims = claims
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        });
        let browser = Browser::new(&self.daemon.base);
        let start = browser.get("/auth/oidc/login").await;
        assert_eq!(start.status(), 303);
        let at_idp = browser.get(&location(&start)).await;
        let response = browser.get(&location(&at_idp)).await;
        (response, browser)
    }

    /// Signs in and answers the user's `/api/me`.
    async fn signed_in(&self, email: &str, claims: Value) -> Value {
        let (response, browser) = self.login(email, claims).await;
        assert_eq!(response.status(), 303, "signed in");
        browser.get("/api/me").await.json().await.unwrap()
    }

    /// Signs in expecting a refusal page; its text.
    async fn refused(&self, email: &str, claims: Value) -> String {
        let (response, browser) = self.login(email, claims).await;
        assert_eq!(response.status(), 403);
        let page = response.text().await.unwrap();
        assert_eq!(browser.get("/api/me").await.status(), 401, "no session");
        page
    }

    async fn users(&self) -> Vec<String> {
        let list = self.daemon.get_json_as("/api/users", &self.admin).await;
        list["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn audit_reasons(&self) -> String {
        let audit = self
            .daemon
            .get_json_as("/api/audit?limit=200", &self.admin)
            .await;
        audit.to_string()
    }
}

fn role_of(me: &Value) -> &str {
    me["access"][0]["role"].as_str().unwrap()
}

#[tokio::test]
async fn refusals_name_their_rule_create_nothing_and_are_audited() {
    let rig = Rig::start(json!({
        "required_claims": {"tid": ["tenant-1"]},
        "allowed_email_domains": ["company.com"],
        "allowed_groups": ["engineers"],
    }))
    .await;
    let before = rig.users().await;
    let cases = [
        (
            "a@company.com",
            json!({"groups": ["engineers"]}),
            "required_claims",
        ),
        (
            "a@company.com",
            json!({"tid": "tenant-2", "groups": ["engineers"]}),
            "required_claims",
        ),
        (
            "a@sub.company.com",
            json!({"tid": "tenant-1", "groups": ["engineers"]}),
            "allowed_email_domains",
        ),
        (
            "a@company.com.evil.io",
            json!({"tid": "tenant-1", "groups": ["engineers"]}),
            "allowed_email_domains",
        ),
        (
            "a@company.com",
            json!({"tid": "tenant-1", "groups": ["sales"]}),
            "allowed_groups",
        ),
        (
            "a@company.com",
            json!({"tid": "tenant-1", "groups": []}),
            "allowed_groups",
        ),
        (
            "a@company.com",
            json!({"tid": "tenant-1"}),
            "Missing groups claim",
        ),
        (
            "a@company.com",
            json!({"tid": "tenant-1", "groups": 7}),
            "groups claim",
        ),
    ];
    for (email, claims, rule) in cases {
        let page = rig.refused(email, claims.clone()).await;
        assert!(
            page.contains(rule) || page.contains("groups"),
            "{claims}: {page}"
        );
        assert!(
            !page.contains("tenant-1") && !page.contains("engineers"),
            "no allowed value shown"
        );
    }
    assert_eq!(rig.users().await, before, "no user created");
    let audit = rig.audit_reasons().await;
    for rule in [
        "required_claims",
        "allowed_email_domains",
        "allowed_groups",
        "groups_claim",
    ] {
        assert!(
            audit.contains(&format!("refused by {rule}")),
            "{rule} audited: {audit}"
        );
    }
    // Everything right: admitted.
    let me = rig
        .signed_in(
            "a@company.com",
            json!({"tid": "tenant-1", "groups": ["sales", "engineers"]}),
        )
        .await;
    assert_eq!(role_of(&me), "viewer");
}

#[tokio::test]
async fn the_mapping_applies_at_the_first_login_and_follows_the_groups() {
    let rig = Rig::start(json!({
        "groups_claim": "/realm_access/roles",
        "role_mapping": [
            {"group": "devs", "role": "developer"},
            {"group": "leads", "role": "environment_admin"},
        ],
    }))
    .await;
    let nested = |roles: Value| json!({"realm_access": {"roles": roles}});
    let me = rig
        .signed_in("kim@company.com", nested(json!(["devs"])))
        .await;
    assert_eq!(role_of(&me), "developer", "mapped at the first login");
    let me = rig
        .signed_in("kim@company.com", nested(json!(["devs", "leads"])))
        .await;
    assert_eq!(role_of(&me), "environment_admin", "promoted");
    let me = rig
        .signed_in("kim@company.com", nested(json!(["other"])))
        .await;
    assert_eq!(role_of(&me), "viewer", "demoted to the default role");
    // No claim: refused, and nothing changes.
    rig.signed_in("kim@company.com", nested(json!(["leads"])))
        .await;
    let page = rig.refused("kim@company.com", json!({})).await;
    assert!(page.contains("Missing groups claim"), "{page}");
    let kim = rig.daemon.get_json_as("/api/users/kim", &rig.admin).await;
    assert_eq!(
        kim["access"][0]["role"], "environment_admin",
        "never demoted by a missing claim"
    );
    assert_eq!(kim["access_managed_by_provider"], true);
    // Access of such users is read-only elsewhere.
    let answer = rig
        .daemon
        .api(
            Method::PUT,
            "/api/users/kim/access",
            &rig.admin,
            Some(json!([{"role": "viewer", "scope": "environment:*"}])),
        )
        .await;
    assert_eq!(answer.status(), 409);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "managed_by_provider");
    // A local user is still managed here.
    rig.daemon
        .create_user(&rig.admin, "lou", "developer", Some("lou-password-1"))
        .await;
    let answer = rig
        .daemon
        .api(
            Method::PUT,
            "/api/users/lou/access",
            &rig.admin,
            Some(json!([{"role": "viewer", "scope": "environment:*"}])),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let lou = rig.daemon.get_json_as("/api/users/lou", &rig.admin).await;
    assert_eq!(lou["access_managed_by_provider"], false);
}

#[tokio::test]
async fn a_mapping_never_removes_the_last_enabled_server_admin() {
    let rig = Rig::start(json!({
        "role_mapping": [{"group": "admins", "role": "server_admin"}],
    }))
    .await;
    let me = rig
        .signed_in("root@company.com", json!({"groups": ["admins"]}))
        .await;
    assert_eq!(role_of(&me), "server_admin");
    // The first admin goes: the SSO admin is the last enabled server_admin.
    let answer = rig
        .daemon
        .api(
            Method::PATCH,
            "/api/users/admin",
            &rig.admin,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let me = rig
        .signed_in("root@company.com", json!({"groups": []}))
        .await;
    assert_eq!(
        role_of(&me),
        "server_admin",
        "kept: the last enabled server_admin"
    );
}

#[tokio::test]
async fn entra_group_overage_is_refused_with_what_to_configure() {
    let rig = Rig::start(json!({"allowed_groups": ["00000000-0000-0000-0000-000000000001"]})).await;
    let page = rig
        .refused(
            "e@company.com",
            json!({"_claim_names": {"groups": "src1"},
                   "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}),
        )
        .await;
    assert!(page.contains("Too many groups"), "{page}");
    assert!(page.contains("assigned to the application"), "{page}");
}

#[tokio::test]
async fn claims_come_from_userinfo_when_the_id_token_lacks_them_and_usernames_from_a_claim() {
    let rig = Rig::start(json!({
        "username_claim": "preferred_username",
        "email_claim": "https://example.com/email",
        "allowed_email_domains": ["company.com"],
    }))
    .await;
    rig.idp
        .login_as(IdpUser::from_email("ignored@other.io", "Pat"));
    rig.idp.behave(|b| {
        *b = Behaviour::default();
        b.userinfo_claims = vec![
            ("https://example.com/email".into(), json!("pat@company.com")),
            ("preferred_username".into(), json!("Pat.Smith")),
        ];
    });
    let browser = Browser::new(&rig.daemon.base);
    let start = browser.get("/auth/oidc/login").await;
    let at_idp = browser.get(&location(&start)).await;
    let done = browser.get(&location(&at_idp)).await;
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
    let me: Value = browser.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["username"], "pat.smith");
    assert_eq!(me["email"], "pat@company.com");
}

/// "Check with my account": a server_admin's preview shows the claims and the decision, signs
/// nobody in and creates nothing; anyone else is sent to sign in.
#[tokio::test]
async fn the_preview_shows_claims_and_the_decision_without_signing_in() {
    let rig = Rig::start(json!({
        "allowed_email_domains": ["company.com"],
        "role_mapping": [{"group": "leads", "role": "environment_admin"}],
    }))
    .await;
    let anonymous = Browser::new(&rig.daemon.base);
    let answer = anonymous.get("/auth/oidc/login?preview=1").await;
    assert_eq!(answer.status(), 303);
    assert!(
        location(&answer).starts_with("/login"),
        "{}",
        location(&answer)
    );

    let password = rig.daemon.admin_password();
    let preview = |email: &'static str, groups: Value| {
        let rig = &rig;
        let password = password.clone();
        async move {
            rig.idp.login_as(IdpUser::from_email(email, "Val"));
            rig.idp.behave(|b| {
                *b = Behaviour::default();
                b.id_token_claims = vec![("groups".into(), groups)];
            });
            let browser = Browser::new(&rig.daemon.base);
            browser.sign_in("admin", &password).await;
            let start = browser.get("/auth/oidc/login?preview=1").await;
            assert_eq!(start.status(), 303);
            let at_idp = browser.get(&location(&start)).await;
            let page = browser.get(&location(&at_idp)).await;
            assert_eq!(page.status(), 200);
            let html = page.text().await.unwrap();
            let me: Value = browser.get("/api/me").await.json().await.unwrap();
            assert_eq!(me["username"], "admin", "still the admin's own session");
            html
        }
    };
    let allowed = preview("val@company.com", json!(["leads", "x"])).await;
    assert!(allowed.contains("data-allowed=\"true\""), "{allowed}");
    assert!(allowed.contains("creates"), "{allowed}");
    assert!(
        allowed.contains("environment_admin (role_mapping)"),
        "{allowed}"
    );
    assert!(
        allowed.contains("&quot;groups&quot;"),
        "the claims are shown: {allowed}"
    );
    assert!(!allowed.contains("eyJ"), "no token shown");
    let refused = preview("val@other.io", json!(["leads"])).await;
    assert!(refused.contains("data-allowed=\"false\""), "{refused}");
    assert!(refused.contains("allowed_email_domains"), "{refused}");
    assert!(
        refused.contains("<th scope=\"row\">Groups</th><td>leads</td>"),
        "the groups are shown even when refused: {refused}"
    );
    assert!(
        !rig.users().await.contains(&"val".to_owned()),
        "nobody created"
    );
}
