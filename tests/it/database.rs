//! The PostgreSQL commands through the real binary: `migrate-db`, a newer schema refused,
//! `migrate-store` from a sled data directory (old keys keep working, a non-empty target
//! refused), and the account commands with `--database-url`. The database password never
//! appears in an output or a log line.

use coderflow::store::Store;
use reqwest::Method;
use serde_json::Value;

use crate::support::postgres::{self, Postgres};
use crate::support::{Daemon, Setup, server_command};

/// A password in the URL: the tests' cluster trusts local connections, so it is not checked,
/// but every output is searched for it.
const DB_PASSWORD: &str = "pg-pass-w0rd-never-shown";

/// `fresh`'s URL with [`DB_PASSWORD`] in it, and the database's name.
fn with_password(url: &str) -> (String, String) {
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    (
        url.replacen("coderflow@", &format!("coderflow:{DB_PASSWORD}@"), 1),
        name,
    )
}

/// Runs `coder-server args...` with `stdin`; (exit code, stdout, stderr). Fails the test when
/// the database password shows in either output.
fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let (code, stdout, stderr) = server_command(args, stdin);
    assert!(
        !stdout.contains(DB_PASSWORD) && !stderr.contains(DB_PASSWORD),
        "the database password was shown: {stdout}{stderr}"
    );
    (code, stdout, stderr)
}

fn cluster() -> &'static Postgres {
    postgres::shared()
}

#[test]
fn migrate_db_applies_once_and_a_newer_schema_is_refused_by_every_command() {
    let (url, db) = with_password(&cluster().fresh_database());
    let (code, out, err) = run(&["migrate-db", "--database-url", &url], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("from version 0 to 3"), "{out}");
    let (code, out, _) = run(&["migrate-db", "--database-url", &url], None);
    assert_eq!(code, 0);
    assert!(out.contains("version 3, nothing to do"), "{out}");

    // A newer binary migrated the database: this one refuses to touch it, saying why.
    cluster()
        .psql(&db, "INSERT INTO coderflow_schema (version) VALUES (7)")
        .unwrap();
    let (code, _, err) = run(&["migrate-db", "--database-url", &url], None);
    assert_ne!(code, 0);
    assert!(
        err.contains("schema is version 7, newer than this binary's 3"),
        "{err}"
    );
    let setup = Setup::git();
    let (code, _, err) = run(
        &[
            "serve",
            "--setup-repo",
            setup.repo.to_str().unwrap(),
            "--data-dir",
            setup.data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
        ],
        None,
    );
    assert_ne!(code, 0, "serve refuses a newer schema");
    assert!(err.contains("newer than this binary's 3"), "{err}");
    let (code, _, err) = run(
        &[
            "set-role",
            "--database-url",
            &url,
            "--username",
            "x",
            "--role",
            "viewer",
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("newer than this binary's 3"), "{err}");
}

#[test]
fn a_bad_database_url_is_refused_without_showing_its_password() {
    for (url, expected) in [
        (format!("mysql://u:{DB_PASSWORD}@h/db"), "postgres://"),
        (
            format!("postgres://u:{DB_PASSWORD}@127.0.0.1:1/db?sslmode=bogus"),
            "sslmode",
        ),
    ] {
        let (code, out, err) = run(&["migrate-db", "--database-url", &url], None);
        assert_ne!(code, 0, "{url}");
        assert!(
            format!("{out}{err}").contains(expected),
            "{url}: {out}{err}"
        );
    }
    // Unreachable: a clear error naming the host, and no password.
    let (code, _, err) = run(
        &[
            "migrate-db",
            "--database-url",
            &format!("postgres://u:{DB_PASSWORD}@127.0.0.1:1/db?sslmode=disable"),
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("127.0.0.1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_commands_work_against_postgres() {
    let (url, _) = with_password(&cluster().fresh_database());
    let replica = |setup: Setup| {
        let command = setup.serve_command(&["--database-url", &url]);
        Daemon::spawn(command, setup)
    };
    let (code, out, err) = run(
        &[
            "create-user",
            "--database-url",
            &url,
            "--username",
            "dora",
            "--email",
            "dora@example.com",
            "--name",
            "Dora",
            "--role",
            "developer",
            "--password-stdin",
        ],
        Some("dora-password-1\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let daemon = replica(Setup::git());
    assert!(!daemon.logs().contains(DB_PASSWORD));
    let key = daemon.login("dora", "dora-password-1").await;
    let me = daemon.get_json_as("/api/me", &key).await;
    assert_eq!(me["access"][0]["role"], "developer");

    let (code, out, err) = run(
        &[
            "set-role",
            "--database-url",
            &url,
            "--username",
            "dora",
            "--role",
            "server_admin",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let me = daemon.get_json_as("/api/me", &key).await;
    assert_eq!(
        me["access"][0]["role"], "server_admin",
        "the running replica sees it"
    );

    let (code, out, err) = run(
        &[
            "reset-password",
            "--database-url",
            &url,
            "--username",
            "dora",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    // A new password ends the old keys, on the running replica too.
    let answer = daemon.api(Method::GET, "/api/me", &key, None).await;
    assert_eq!(answer.status(), 401);
    assert_eq!(
        daemon
            .login_response("dora", "dora-password-1")
            .await
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_sled_into_an_empty_database_and_old_keys_keep_working() {
    // A sled daemon with an admin, a user with a password, a key and an SSO identity.
    let mut daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    daemon
        .create_user(&admin, "dora", "developer", Some("dora-password-1"))
        .await;
    let dora = daemon.login("dora", "dora-password-1").await;
    let data = daemon.setup.data.clone();
    let data_arg = data.to_str().unwrap().to_owned();

    let (url, db) = with_password(&cluster().fresh_database());
    // While the daemon runs, its store is locked: nothing is copied.
    let (code, _, err) = run(
        &[
            "migrate-store",
            "--data-dir",
            &data_arg,
            "--database-url",
            &url,
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("stop the daemon"), "{err}");
    daemon.signal("TERM");
    daemon.wait_exit();
    {
        let store = Store::open(&data.join("store")).unwrap();
        store
            .link_identity("https://idp.example.com", "sub-dora", "dora")
            .await
            .unwrap();
        store.flush().await.unwrap();
    }

    let (code, out, err) = run(
        &[
            "migrate-store",
            "--data-dir",
            &data_arg,
            "--database-url",
            &url,
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("copied 2 users, 1 SSO identities, 2 API keys"),
        "{out}"
    );
    let audit_before: i64 = cluster()
        .psql(&db, "SELECT count(*) FROM audit")
        .unwrap()
        .parse()
        .unwrap();
    assert!(audit_before > 0, "audit events copied");

    // Run again: the target is not empty any more, and stays as it was.
    let (code, _, err) = run(
        &[
            "migrate-store",
            "--data-dir",
            &data_arg,
            "--database-url",
            &url,
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("migrate-store copies into an empty database only"),
        "{err}"
    );
    assert_eq!(
        cluster().psql(&db, "SELECT count(*) FROM users").unwrap(),
        "2"
    );

    // A replica on the database: the old keys and passwords work, the identity is there.
    let setup = Setup::git();
    let replica = Daemon::spawn(setup.serve_command(&["--database-url", &url]), setup);
    assert!(
        !replica.logs().contains("initial admin password"),
        "no new admin on a migrated store"
    );
    for key in [&admin, &dora] {
        let me: Value = replica.get_json_as("/api/me", key).await;
        assert!(me["username"].is_string(), "{me}");
    }
    assert_eq!(
        replica.get_json_as("/api/me", &dora).await["username"],
        "dora"
    );
    replica.login("dora", "dora-password-1").await;
    assert_eq!(
        cluster()
            .psql(
                &db,
                "SELECT username FROM identities WHERE sub = 'sub-dora'"
            )
            .unwrap(),
        "dora"
    );
}
