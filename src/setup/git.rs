//! Git safety: `oidc.json` holds a client secret, so git must ignore it.
//!
//! Checked through libgit2 at start-up and on every reload. This module may append `oidc.json` to
//! the setup repository's `.gitignore`; it never touches the index or history: a file that is
//! already tracked is reported, and the operator fixes it.

use std::io::Write;
use std::path::{Path, PathBuf};

use git2::Repository;
use serde::{Deserialize, Serialize};

use super::config::OIDC_FILE;
use crate::fsutil::write_atomic;

/// What git knows of `oidc.json`, for the reload status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    /// The setup repository is (inside) a git work tree.
    pub repo: bool,
    /// Git ignores `oidc.json` (after any fix this check made).
    pub ignored: bool,
    /// `oidc.json` is in the index or in `HEAD`: its secret may be in history.
    pub tracked: bool,
}

/// Makes sure git ignores `<root>/oidc.json`, appending it to `<root>/.gitignore` when it does
/// not, and reports whether it is tracked. Blocking (libgit2 and file I/O).
///
/// Never fails: problems are logged and shown in the returned state.
pub(crate) fn ensure_oidc_ignored(root: &Path) -> GitState {
    let Some((repo, relative)) = open_work_tree(root) else {
        return GitState::default();
    };
    let mut ignored = repo.is_path_ignored(&relative).unwrap_or(false);
    if !ignored {
        match append_to_gitignore(root) {
            Ok(gitignore) => {
                tracing::warn!(
                    gitignore = %gitignore.display(),
                    "{OIDC_FILE} was not ignored by git; added it to .gitignore (it holds the client secret)"
                );
                // A fresh handle: libgit2 caches ignore rules per repository object.
                ignored = open_work_tree(root)
                    .and_then(|(r, rel)| r.is_path_ignored(&rel).ok())
                    .unwrap_or(false);
            }
            Err(e) => tracing::error!(
                root = %root.display(),
                error = %e,
                "{OIDC_FILE} is not ignored by git and .gitignore could not be updated; add `{OIDC_FILE}` to it by hand"
            ),
        }
    }
    let tracked = is_tracked(&repo, &relative);
    if tracked {
        tracing::error!(
            root = %root.display(),
            "{OIDC_FILE} is tracked by git, so its client secret is (or will be) in the repository history. \
             Run `git rm --cached {OIDC_FILE}`, commit, and rotate the client secret at your identity provider"
        );
    }
    GitState {
        repo: true,
        ignored,
        tracked,
    }
}

/// The repository whose work tree holds `root`, and the path of `oidc.json` relative to that
/// work tree. `None` when `root` is not in a work tree (or the repository cannot be opened,
/// which is logged).
fn open_work_tree(root: &Path) -> Option<(Repository, PathBuf)> {
    let repo = match Repository::discover(root) {
        Ok(repo) => repo,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return None,
        Err(e) => {
            tracing::warn!(root = %root.display(), error = %e, "cannot open the setup repository with git");
            return None;
        }
    };
    let workdir = repo.workdir()?.canonicalize().ok()?;
    let root = root.canonicalize().ok()?;
    let relative = root.strip_prefix(&workdir).ok()?.join(OIDC_FILE);
    Some((repo, relative))
}

fn is_tracked(repo: &Repository, relative: &Path) -> bool {
    let in_index = repo
        .index()
        .map(|index| index.get_path(relative, 0).is_some())
        .unwrap_or(false);
    let in_head = repo
        .head()
        .and_then(|head| head.peel_to_tree())
        .map(|tree| tree.get_path(relative).is_ok())
        .unwrap_or(false);
    in_index || in_head
}

/// Appends `oidc.json` to `<root>/.gitignore` (creating it), atomically. Returns its path.
fn append_to_gitignore(root: &Path) -> std::io::Result<PathBuf> {
    let path = root.join(".gitignore");
    let mut content = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    if !content.is_empty() && !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    writeln!(
        content,
        "# Added by coder-server: {OIDC_FILE} holds the SSO client secret.\n{OIDC_FILE}"
    )?;
    let mode = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .unwrap_or(0o644);
    write_atomic(&path, &content, mode)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_all(repo: &Repository, paths: &[&str]) {
        let mut index = repo.index().unwrap();
        for p in paths {
            index.add_path(Path::new(p)).unwrap();
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[])
            .unwrap();
    }

    #[test]
    fn not_a_repository_reports_nothing_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ensure_oidc_ignored(dir.path()), GitState::default());
        assert!(!dir.path().join(".gitignore").exists());
    }

    #[test]
    fn missing_ignore_rule_is_appended_keeping_existing_lines() {
        let dir = tempfile::tempdir().unwrap();
        Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join(".gitignore"), "target").unwrap();
        let state = ensure_oidc_ignored(dir.path());
        assert_eq!(
            state,
            GitState {
                repo: true,
                ignored: true,
                tracked: false
            }
        );
        let text = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
        assert!(text.starts_with("target\n"), "{text}");
        assert!(text.lines().any(|l| l == "oidc.json"), "{text}");
        // A second check finds the rule and appends nothing.
        ensure_oidc_ignored(dir.path());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
            text
        );
    }

    #[test]
    fn setup_repo_in_a_subfolder_of_a_work_tree_is_handled() {
        let dir = tempfile::tempdir().unwrap();
        Repository::init(dir.path()).unwrap();
        let sub = dir.path().join("config/coderflow");
        std::fs::create_dir_all(&sub).unwrap();
        let state = ensure_oidc_ignored(&sub);
        assert!(state.repo && state.ignored && !state.tracked, "{state:?}");
        assert!(sub.join(".gitignore").exists());
    }

    #[test]
    fn tracked_file_is_reported_and_the_index_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("oidc.json"), "{}").unwrap();
        commit_all(&repo, &["oidc.json"]);
        let state = ensure_oidc_ignored(dir.path());
        assert!(state.repo && state.ignored && state.tracked, "{state:?}");
        let index = repo.index().unwrap();
        assert!(index.get_path(Path::new("oidc.json"), 0).is_some());
    }

    #[test]
    fn staged_but_uncommitted_file_counts_as_tracked() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("oidc.json"), "{}").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("oidc.json")).unwrap();
        index.write().unwrap();
        assert!(ensure_oidc_ignored(dir.path()).tracked);
    }
}
