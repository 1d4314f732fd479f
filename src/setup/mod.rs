//! The setup repository: the git folder of configuration the daemon watches.
//!
//! Owns `oidc.json`'s model and validation ([`config`]), git safety ([`git`]), the folder watch
//! ([`watcher`]) and creating a repository from the template ([`template`]). It knows nothing of
//! HTTP or of the live configuration: [`crate::reload`] decides what becomes live.

pub mod config;
pub(crate) mod git;
pub(crate) mod template;
pub(crate) mod watcher;

use std::path::PathBuf;

/// Failures of the setup repository layer.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot create the setup repository {}", root.display())]
    CreateRepo {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot initialise git in the setup repository {}", root.display())]
    GitInit {
        root: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("cannot watch the setup repository {}", root.display())]
    Watch {
        root: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SetupError {
    /// The file or folder the error is about.
    pub fn path(&self) -> PathBuf {
        match self {
            SetupError::CreateRepo { root, .. }
            | SetupError::GitInit { root, .. }
            | SetupError::Watch { root, .. } => root.clone(),
            SetupError::Read { path, .. } => path.clone(),
        }
    }
}
