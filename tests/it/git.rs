//! Git safety through the real daemon on real temporary repositories.

use std::path::Path;

use crate::support::{Setup, oidc_json, save_atomic};

fn commit(repo: &git2::Repository, paths: &[&str]) -> git2::Oid {
    let mut index = repo.index().unwrap();
    for p in paths {
        index.add_path(Path::new(p)).unwrap();
    }
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[])
        .unwrap()
}

#[tokio::test]
async fn not_ignored_file_gets_a_gitignore_rule_and_a_warning() {
    let setup = Setup::plain();
    git2::Repository::init(&setup.repo).unwrap();
    setup.write_oidc(&oidc_json("Git"));
    let daemon = setup.start();
    let gitignore = std::fs::read_to_string(daemon.setup.repo.join(".gitignore")).unwrap();
    assert!(gitignore.lines().any(|l| l == "oidc.json"), "{gitignore}");
    let logs = daemon.logs();
    assert!(
        logs.contains("WARN") && logs.contains("oidc.json was not ignored by git"),
        "{logs}"
    );
    let git = daemon.status().await.git;
    assert!(git.repo && git.ignored && !git.tracked, "{git:?}");
    let repo = git2::Repository::open(&daemon.setup.repo).unwrap();
    assert!(repo.is_path_ignored(Path::new("oidc.json")).unwrap());
}

#[tokio::test]
async fn already_ignored_file_leaves_gitignore_alone() {
    let setup = Setup::git();
    std::fs::write(setup.repo.join(".gitignore"), "*.json\n").unwrap();
    setup.write_oidc(&oidc_json("Git"));
    let daemon = setup.start();
    assert_eq!(
        std::fs::read_to_string(daemon.setup.repo.join(".gitignore")).unwrap(),
        "*.json\n"
    );
    assert!(!daemon.logs().contains("was not ignored"));
    let git = daemon.status().await.git;
    assert!(git.repo && git.ignored && !git.tracked, "{git:?}");
}

#[tokio::test]
async fn rule_removed_while_running_is_restored_on_the_next_reload() {
    let daemon = Setup::git().start();
    std::fs::remove_file(daemon.setup.repo.join(".gitignore")).unwrap();
    save_atomic(&daemon.setup.oidc_path(), &oidc_json("Later"));
    daemon.wait_for_display_name("Later").await;
    let gitignore = std::fs::read_to_string(daemon.setup.repo.join(".gitignore")).unwrap();
    assert!(gitignore.lines().any(|l| l == "oidc.json"), "{gitignore}");
    assert!(daemon.status().await.git.ignored);
}

#[tokio::test]
async fn tracked_file_is_an_error_with_the_fix_and_history_is_untouched() {
    let setup = Setup::plain();
    let repo = git2::Repository::init(&setup.repo).unwrap();
    setup.write_oidc(&oidc_json("Tracked"));
    let head = commit(&repo, &["oidc.json"]);
    let daemon = setup.start();
    let logs = daemon.logs();
    assert!(logs.contains("ERROR"), "{logs}");
    assert!(logs.contains("oidc.json is tracked by git"), "{logs}");
    assert!(logs.contains("git rm --cached oidc.json"), "{logs}");
    assert!(logs.contains("rotate the client secret"), "{logs}");
    let git = daemon.status().await.git;
    assert!(git.repo && git.tracked, "{git:?}");
    assert_eq!(
        daemon.metric("coderflow_setup_oidc_tracked_by_git").await,
        1.0
    );
    // Still served: a tracked file is a warning to the operator, not a broken configuration.
    assert_eq!(daemon.public_config().await["display_name"], "Tracked");
    let repo = git2::Repository::open(&daemon.setup.repo).unwrap();
    assert_eq!(repo.head().unwrap().target(), Some(head));
    assert!(
        repo.index()
            .unwrap()
            .get_path(Path::new("oidc.json"), 0)
            .is_some()
    );
}

#[tokio::test]
async fn not_a_repository_is_reported_and_nothing_is_written() {
    let setup = Setup::plain();
    setup.write_oidc(&oidc_json("Plain"));
    let daemon = setup.start();
    let git = daemon.status().await.git;
    assert!(!git.repo && !git.ignored && !git.tracked, "{git:?}");
    assert!(!daemon.setup.repo.join(".gitignore").exists());
}
