//! Regression tests for the security review's findings, each through the real binary the way
//! the finding was seen: concurrent admin requests, HTTP/2 with prior knowledge and chunked
//! bodies on a raw socket, slow clients, floods of unauthenticated requests, planted symlinks,
//! and limits shared by many clients behind one address.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::idp::TestIdp;
use crate::support::{Daemon, Setup, admin_command, oidc_json};

/// The daemon's address for a raw socket.
fn addr(daemon: &Daemon) -> String {
    daemon.base.trim_start_matches("http://").to_owned()
}

/// Reads what the server sends until it closes the connection or `limit` passes; answers the
/// bytes and whether the server closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while start.elapsed() < limit {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

async fn login_key(daemon: &Daemon, username: &str, password: &str) -> String {
    daemon.login(username, password).await
}

#[tokio::test]
async fn two_admins_disabling_each_other_at_once_always_leave_one() {
    let daemon = Setup::git().start();
    let password = daemon.admin_password();
    let admin = login_key(&daemon, "admin", &password).await;
    daemon
        .create_user(&admin, "second", "server_admin", Some("second-password"))
        .await;
    for round in 0..8 {
        let a = login_key(&daemon, "admin", &password).await;
        let b = login_key(&daemon, "second", "second-password").await;
        let disable = json!({"disabled": true});
        let (first, second) = tokio::join!(
            daemon.api(
                Method::PATCH,
                "/api/users/second",
                &a,
                Some(disable.clone())
            ),
            daemon.api(Method::PATCH, "/api/users/admin", &b, Some(disable)),
        );
        let statuses = [first.status().as_u16(), second.status().as_u16()];
        let mut sorted = statuses;
        sorted.sort_unstable();
        // One wins; the other is refused by the rule, or finds its own key already revoked.
        assert!(
            sorted == [200, 409] || sorted == [200, 401],
            "round {round}: {statuses:?}"
        );
        let survivor = if statuses[0] == 200 { &a } else { &b };
        let users: Value = daemon.get_json_as("/api/users", survivor).await;
        let enabled_admins: Vec<&str> = users["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["disabled"] == false)
            .filter(|u| u["access"][0]["role"] == "server_admin")
            .map(|u| u["username"].as_str().unwrap())
            .collect();
        assert_eq!(enabled_admins.len(), 1, "round {round}: {users}");
        // Enable the other again for the next round.
        for name in ["admin", "second"] {
            let response = daemon
                .api(
                    Method::PATCH,
                    &format!("/api/users/{name}"),
                    survivor,
                    Some(json!({"disabled": false})),
                )
                .await;
            assert_eq!(response.status(), 200);
        }
    }
}

#[tokio::test]
async fn body_caps_hold_for_http2_prior_knowledge_and_chunked_bodies() {
    let daemon = Setup::git().start();
    // HTTP/2 with prior knowledge: the preface and a large body are not an HTTP/1.1 request.
    let mut h2 = TcpStream::connect(addr(&daemon)).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    let _ = h2.write_all(&vec![0u8; 4 * 1024 * 1024]);
    let (answer, closed) = read_until_closed(&mut h2, Duration::from_secs(5));
    assert!(closed, "the connection ends");
    assert!(!answer.contains(" 200 "), "{answer}");
    assert!(
        !answer.starts_with("HTTP/2"),
        "no HTTP/2 is spoken: {answer}"
    );

    // A chunked body past the route's cap: 413, whatever it does not declare.
    let mut chunked = TcpStream::connect(addr(&daemon)).unwrap();
    chunked
        .write_all(
            b"POST /api/auth/device/code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
    for _ in 0..64 {
        if chunked.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let (answer, _) = read_until_closed(&mut chunked, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // JSON routes: too large is 413, not JSON is 415 (not 405 from a sibling route).
    let admin = daemon.admin_key().await;
    let big = daemon
        .http
        .post(daemon.url("/api/keys"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.headers()["connection"],
        "close",
        "the unread body ends the connection"
    );
    let plain = daemon
        .http
        .post(daemon.url("/api/keys"))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("{\"name\": \"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 415);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_connections_are_capped() {
    let daemon = Setup::git().start_with(&[
        "--header-timeout",
        "2",
        "--idle-timeout",
        "3",
        "--max-connections",
        "2",
    ]);
    // Slowloris: one header byte every 300 ms never completes a request head in time.
    let start = Instant::now();
    let mut slow = TcpStream::connect(addr(&daemon)).unwrap();
    let head =
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut_off = None;
    for byte in head {
        if slow.write_all(&[*byte]).is_err() {
            cut_off = Some(start.elapsed());
            break;
        }
        slow.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        if matches!(slow.read(&mut buf), Ok(0)) {
            cut_off = Some(start.elapsed());
            break;
        }
    }
    let cut_off = cut_off.expect("the slow client was disconnected");
    assert!(cut_off < Duration::from_secs(6), "after {cut_off:?}");
    drop(slow);

    // A kept-alive connection that sends nothing more is closed after the idle timeout.
    let mut idle = TcpStream::connect(addr(&daemon)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "closed when idle");
    let idle_for = started.elapsed();
    assert!(
        idle_for >= Duration::from_secs(2) && idle_for < Duration::from_secs(8),
        "{idle_for:?}"
    );

    // Two connections are the cap: a third waits until one closes.
    let first = TcpStream::connect(addr(&daemon)).unwrap();
    let second = TcpStream::connect(addr(&daemon)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(addr(&daemon)).unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (early, _) = read_until_closed(&mut third, Duration::from_millis(600));
    assert!(early.is_empty(), "served beyond the cap: {early}");
    drop(first);
    drop(second);
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_flood_of_failures_cannot_fill_the_audit_trail() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for i in 0..150 {
        let response = http
            .get(daemon.url(&format!("/auth/oidc/callback?error=flood{i}")))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }
    let long_name = "u".repeat(15_000);
    assert_eq!(
        daemon
            .login_response(&long_name, "wrong-password")
            .await
            .status(),
        401
    );
    let trail = daemon
        .get_json_as("/api/audit?limit=500&kind=login", &admin)
        .await;
    let events = trail["events"].as_array().unwrap();
    let sso_failures = events.iter().filter(|e| e["kind"] == "login.sso").count();
    assert!(
        sso_failures <= coderflow::audit::THROTTLE_PER_ADDRESS as usize,
        "{sso_failures} callback errors recorded one by one"
    );
    assert!(sso_failures > 0, "the first ones are recorded");
    for event in events {
        for field in ["actor", "subject"] {
            if let Some(text) = event[field].as_str() {
                assert!(
                    text.chars().count() <= coderflow::audit::MAX_NAME_CHARS,
                    "{field}"
                );
            }
        }
    }
}

#[tokio::test]
async fn when_access_ends_keys_end_and_admins_manage_anyones_keys() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    daemon
        .create_user(&admin, "ann", "developer", Some("ann-password-1"))
        .await;
    let status = |key: String| {
        let daemon = &daemon;
        async move {
            daemon
                .api(Method::GET, "/api/me", &key, None)
                .await
                .status()
                .as_u16()
        }
    };
    // A new password (API) revokes the keys.
    let key = login_key(&daemon, "ann", "ann-password-1").await;
    let patch = daemon
        .api(
            Method::PATCH,
            "/api/users/ann",
            &admin,
            Some(json!({"password": "ann-password-2"})),
        )
        .await;
    assert_eq!(patch.status(), 200);
    assert_eq!(status(key).await, 401);
    // Disabled then enabled again: the old key stays dead.
    let key = login_key(&daemon, "ann", "ann-password-2").await;
    for disabled in [true, false] {
        let response = daemon
            .api(
                Method::PATCH,
                "/api/users/ann",
                &admin,
                Some(json!({"disabled": disabled})),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(status(key).await, 401);
    // reset-password revokes keys, unless --keep-keys.
    let key = login_key(&daemon, "ann", "ann-password-2").await;
    let (code, out, err) = admin_command(
        "reset-password",
        &daemon.setup.data,
        &["--username=ann", "--password-stdin", "--keep-keys"],
        Some("ann-password-3\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kept"), "{out}");
    assert_eq!(status(key.clone()).await, 200);
    let (code, out, err) = admin_command(
        "reset-password",
        &daemon.setup.data,
        &["--username=ann", "--password-stdin"],
        Some("ann-password-4\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    assert_eq!(status(key).await, 401);
    // server_admin lists and revokes anyone's keys; nobody else may.
    let key = login_key(&daemon, "ann", "ann-password-4").await;
    let listed = daemon.get_json_as("/api/users/ann/keys", &admin).await;
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].get("expires_at").is_some());
    assert!(!listed.to_string().contains(&key[3..]), "never the secret");
    let id = keys[0]["id"].as_str().unwrap();
    let forbidden = daemon
        .api(Method::GET, "/api/users/admin/keys", &key, None)
        .await;
    assert_eq!(forbidden.status(), 403);
    let revoked = daemon
        .api(
            Method::DELETE,
            &format!("/api/users/ann/keys/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_eq!(status(key).await, 401);
    let missing = daemon
        .api(Method::GET, "/api/users/nobody/keys", &admin, None)
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_new_issuer_or_client_id_needs_the_secret_again() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("Current"));
    let daemon = setup.start();
    let admin = daemon.admin_key().await;
    let before = std::fs::read_to_string(daemon.setup.oidc_path()).unwrap();
    let mut changed: Value = serde_json::from_str(&oidc_json("Current")).unwrap();
    changed.as_object_mut().unwrap().remove("client_secret");
    for (field, value) in [
        ("issuer", "https://attacker.example/"),
        ("client_id", "another-client"),
    ] {
        let mut body = changed.clone();
        body[field] = value.into();
        let response = daemon
            .api(Method::PUT, "/api/settings/sso", &admin, Some(body))
            .await;
        assert_eq!(response.status(), 422, "{field}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["details"][0]["pointer"], "/client_secret", "{field}");
        assert_eq!(
            std::fs::read_to_string(daemon.setup.oidc_path()).unwrap(),
            before
        );
    }
    // The same provider keeps the saved secret.
    changed["display_name"] = "Renamed".into();
    let response = daemon
        .api(Method::PUT, "/api/settings/sso", &admin, Some(changed))
        .await;
    assert_eq!(response.status(), 200);
    let saved = std::fs::read_to_string(daemon.setup.oidc_path()).unwrap();
    assert!(saved.contains("test-secret-do-not-log"));
}

#[tokio::test]
async fn a_settings_save_never_writes_through_a_planted_symlink() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("Current"));
    let daemon = setup.start();
    let admin = daemon.admin_key().await;
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let repo = &daemon.setup.repo;
    // The old predictable temporary name, and oidc.json itself, planted as symlinks.
    std::os::unix::fs::symlink(
        &victim,
        repo.join(format!(".oidc.json.tmp-{}", daemon.pid())),
    )
    .unwrap();
    std::fs::remove_file(repo.join("oidc.json")).unwrap();
    std::os::unix::fs::symlink(&victim, repo.join("oidc.json")).unwrap();
    let mut body: Value = serde_json::from_str(&oidc_json("Saved")).unwrap();
    body["client_secret"] = "a-new-secret".into();
    let response = daemon
        .api(Method::PUT, "/api/settings/sso", &admin, Some(body))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(repo.join("oidc.json")).unwrap();
    assert!(meta.file_type().is_file(), "oidc.json is a regular file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn guessing_a_password_from_one_address_never_locks_it_out_from_another() {
    let daemon = Setup::git().start_with(&["--trusted-proxies", "127.0.0.1"]);
    let password = daemon.admin_password();
    let attempt = |from: &'static str, pw: String| {
        let daemon = &daemon;
        async move {
            daemon
                .http
                .post(daemon.url("/api/auth/login"))
                .header("x-forwarded-for", format!("6.6.6.6, {from}"))
                .json(&json!({"username": "admin", "password": pw}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..10 {
        assert_eq!(attempt("203.0.113.7", "wrong".into()).await, 401);
    }
    assert_eq!(
        attempt("203.0.113.7", password.clone()).await,
        429,
        "the guesser is stopped"
    );
    assert_eq!(
        attempt("198.51.100.2", password.clone()).await,
        200,
        "the owner elsewhere is not"
    );
    // The audit trail names the client behind the proxy, not the proxy or a forged entry.
    let admin = daemon.login("admin", &password).await;
    let trail = daemon
        .get_json_as("/api/audit?limit=50&kind=login", &admin)
        .await;
    let ips: Vec<&str> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["ip"].as_str())
        .collect();
    assert!(ips.contains(&"203.0.113.7"), "{ips:?}");
    assert!(!ips.contains(&"6.6.6.6"), "{ips:?}");
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let daemon = Setup::git().start();
    let password = daemon.admin_password();
    let response = daemon
        .http
        .post(daemon.url("/api/auth/login"))
        .header("x-forwarded-for", "203.0.113.99")
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let admin = daemon.login("admin", &password).await;
    let trail = daemon
        .get_json_as("/api/audit?limit=5&kind=login", &admin)
        .await;
    assert_eq!(trail["events"][0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn names_are_validated_the_same_everywhere() {
    let daemon = Setup::git().start();
    let password = daemon.admin_password();
    let long = daemon
        .http
        .post(daemon.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": password, "key_name": "k".repeat(15_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status(), 400);
    let body: Value = long.json().await.unwrap();
    assert_eq!(body["error"], "invalid_name");
    for hostile in ["evil\u{202E}gpj.exe", "clear\u{1b}[2J", "two\nlines"] {
        let response = daemon
            .http
            .post(daemon.url("/api/auth/device/code"))
            .json(&json!({"client_name": hostile}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{hostile:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
    let fine = daemon.device_code("Zoë’s laptop").await;
    assert!(fine["user_code"].is_string());
}

#[tokio::test]
async fn wrong_user_codes_block_the_typist_not_their_neighbours() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    for name in ["typo", "neighbour"] {
        daemon
            .create_user(&admin, name, "developer", Some("long-password-1"))
            .await;
    }
    let typist = Browser::new(&daemon.base);
    typist.sign_in("typo", "long-password-1").await;
    for _ in 0..5 {
        let response = typist.get("/device?user_code=BBBB-BBBB").await;
        assert_eq!(response.status(), 404);
    }
    assert_eq!(
        typist.get("/device?user_code=BBBB-BBBB").await.status(),
        429
    );
    let neighbour = Browser::new(&daemon.base);
    neighbour.sign_in("neighbour", "long-password-1").await;
    let code = daemon.device_code("cli").await;
    let user_code = code["user_code"].as_str().unwrap();
    let page = neighbour
        .get(&format!("/device?user_code={user_code}"))
        .await;
    assert_eq!(page.status(), 200, "same address, other user: not blocked");
}

#[tokio::test]
async fn a_user_disabled_between_approval_and_poll_gets_no_key() {
    let daemon = Setup::git().start_with(&["--device-poll-interval", "1"]);
    let admin = daemon.admin_key().await;
    daemon
        .create_user(&admin, "leaver", "developer", Some("long-password-1"))
        .await;
    let browser = Browser::new(&daemon.base);
    browser.sign_in("leaver", "long-password-1").await;
    let code = daemon.device_code("cli").await;
    let approved = browser
        .decide_device(code["user_code"].as_str().unwrap(), "approve")
        .await;
    assert!(approved.status().is_success() || approved.status().is_redirection());
    let disabled = daemon
        .api(
            Method::PATCH,
            "/api/users/leaver",
            &admin,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    let (status, body) = daemon
        .poll_device(code["device_code"].as_str().unwrap())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "access_denied");
    let keys = daemon.get_json_as("/api/users/leaver/keys", &admin).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_provider_cannot_aim_the_server_at_its_own_network() {
    let idp = TestIdp::start("c", "s").await;
    // Another address on this machine: what an internal service would look like.
    idp.behave(|b| b.jwks_uri = Some("http://127.0.0.2:9/internal".into()));
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let form =
        json!({"enabled": true, "client_id": "c", "client_secret": "s", "issuer": idp.issuer()});
    let answer: Value = daemon
        .api(Method::POST, "/api/settings/sso/test", &admin, Some(form))
        .await
        .json()
        .await
        .unwrap();
    let jwks = answer["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jwks")
        .unwrap();
    assert_eq!(jwks["ok"], false);
    assert!(
        jwks["detail"].as_str().unwrap().contains("not contacted"),
        "{jwks}"
    );
    assert_eq!(idp.jwks_calls(), 0);
}
