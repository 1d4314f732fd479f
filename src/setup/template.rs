//! A new setup repository, made from the embedded `setup-repo-template/`.

use std::path::Path;

use crate::fsutil::write_atomic;

/// The template's files: (path relative to the repository root, content).
const TEMPLATE_FILES: [(&str, &str); 12] = [
    (
        "README.md",
        include_str!("../../setup-repo-template/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../setup-repo-template/.gitignore"),
    ),
    (
        "oidc.example.json",
        include_str!("../../setup-repo-template/oidc.example.json"),
    ),
    (
        "examples/auth0.oidc.json",
        include_str!("../../setup-repo-template/examples/auth0.oidc.json"),
    ),
    (
        "examples/entra-id.oidc.json",
        include_str!("../../setup-repo-template/examples/entra-id.oidc.json"),
    ),
    (
        "examples/google-workspace.oidc.json",
        include_str!("../../setup-repo-template/examples/google-workspace.oidc.json"),
    ),
    (
        "examples/okta.oidc.json",
        include_str!("../../setup-repo-template/examples/okta.oidc.json"),
    ),
    (
        "examples/auth0-roles.oidc.json",
        include_str!("../../setup-repo-template/examples/auth0-roles.oidc.json"),
    ),
    (
        "examples/entra-id-app-roles.oidc.json",
        include_str!("../../setup-repo-template/examples/entra-id-app-roles.oidc.json"),
    ),
    (
        "examples/google-workspace-domain.oidc.json",
        include_str!("../../setup-repo-template/examples/google-workspace-domain.oidc.json"),
    ),
    (
        "examples/keycloak.oidc.json",
        include_str!("../../setup-repo-template/examples/keycloak.oidc.json"),
    ),
    (
        "examples/okta-groups.oidc.json",
        include_str!("../../setup-repo-template/examples/okta-groups.oidc.json"),
    ),
];

/// Creates `root` with the template's files and runs `git init` in it (through libgit2).
/// Blocking.
///
/// Fails when the folder cannot be created or written, or git cannot initialise it.
pub(crate) fn create_setup_repo(root: &Path) -> Result<(), super::SetupError> {
    let io = |e| super::SetupError::CreateRepo {
        root: root.to_owned(),
        source: e,
    };
    std::fs::create_dir_all(root.join("examples")).map_err(io)?;
    for (name, content) in TEMPLATE_FILES {
        write_atomic(&root.join(name), content.as_bytes(), 0o644).map_err(io)?;
    }
    git2::Repository::init(root).map_err(|e| super::SetupError::GitInit {
        root: root.to_owned(),
        source: e,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_repository_has_the_template_and_ignores_oidc_json() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("setup-repo");
        create_setup_repo(&root).unwrap();
        let repo = git2::Repository::open(&root).unwrap();
        assert!(repo.is_path_ignored(Path::new("oidc.json")).unwrap());
        let example = std::fs::read(root.join("oidc.example.json")).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&example).unwrap();
        assert!(value["$schema"].is_string());
        // The example is a valid configuration, so copying it is a working start.
        crate::setup::config::parse_oidc_config(&example).unwrap();
        assert!(root.join("README.md").exists());
    }

    #[test]
    fn a_new_repository_has_every_file_of_the_template_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("setup-repo");
        create_setup_repo(&root).unwrap();
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("setup-repo-template");
        let mut pending = vec![template.clone()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&template).unwrap();
                assert_eq!(
                    std::fs::read(root.join(relative)).ok(),
                    Some(std::fs::read(&path).unwrap()),
                    "{} is in a new setup repository",
                    relative.display()
                );
            }
        }
    }
}
