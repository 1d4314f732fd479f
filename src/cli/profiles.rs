//! Server profiles of the `coder` client: `$CODER_CONFIG_DIR/profiles.json` (default: the
//! platform config folder, `~/.config/coderflow/profiles.json`), written atomically with mode
//! 0600 because it holds API keys.
//!
//! The folder and the file must belong to the user running `coder` and must not be writable by
//! group or others: in a folder another user can write, that user could swap the file (and read
//! or plant a key). Such a folder or file is refused with what to fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::secret::Secret;

/// The file's name in the config folder.
pub(crate) const PROFILES_FILE: &str = "profiles.json";
/// The profile used when none was chosen.
pub(crate) const DEFAULT_PROFILE: &str = "default";

/// One server and the credentials for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Profile {
    /// The server's public URL, without a trailing slash.
    pub server: String,
    /// Who the key belongs to (shown by `coder profile list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The personal API key; absent after `coder logout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// The key's id on the server, to revoke it at logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Extra certificate authorities (a PEM file) trusted for this server (`--ca-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Plain http to a host other than this machine was accepted (`--allow-http`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http: bool,
}

/// Every profile and the active one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Profiles {
    /// The profile commands use without `--profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// Refuses `path` (when it exists) if another user owns it or group or others may write it.
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // The profiles file itself must not be a link; the folder may be one (its target counts).
    let is_file = path.file_name() == Some(PROFILES_FILE.as_ref());
    let meta = if is_file {
        std::fs::symlink_metadata(path)
    } else {
        std::fs::metadata(path)
    };
    let meta = match meta {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if meta.file_type().is_symlink() {
        anyhow::bail!(
            "refusing to use {}: it is a symbolic link (the profiles file holds API keys; remove the link)",
            path.display()
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        anyhow::bail!(
            "refusing to use {}: it belongs to another user (uid {}); the profiles file holds API keys. Use a folder of your own (CODER_CONFIG_DIR)",
            path.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        anyhow::bail!(
            "refusing to use {}: other users may write to it (mode {:o}); run `chmod go-w {}`",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        );
    }
    Ok(())
}

/// The config folder: `$CODER_CONFIG_DIR`, else `$XDG_CONFIG_HOME/coderflow`, else
/// `~/.config/coderflow`.
///
/// Fails when none of these can be found.
pub(crate) fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CODER_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("coderflow"));
    }
    let home = std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .context("cannot find the config folder: set CODER_CONFIG_DIR or HOME")?;
    Ok(PathBuf::from(home).join(".config").join("coderflow"))
}

impl Profiles {
    /// Reads the profiles in `dir`; none yet is an empty set.
    ///
    /// Fails when the file exists but cannot be read or parsed.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Profiles> {
        let path = dir.join(PROFILES_FILE);
        check_private(dir)?;
        check_private(&path)?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a valid profiles file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profiles::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the profiles to `dir` atomically (mode 0600), creating the folder (mode 0700).
    ///
    /// Fails when the folder or file cannot be written.
    pub(crate) fn save(&self, dir: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        check_private(dir)?;
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        let path = dir.join(PROFILES_FILE);
        write_atomic(&path, &bytes, 0o600)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The name of the profile to use: `requested`, else the active one, else `default`.
    pub(crate) fn name(&self, requested: Option<&str>) -> String {
        requested
            .map(str::to_owned)
            .or_else(|| self.active.clone())
            .unwrap_or_else(|| DEFAULT_PROFILE.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn profiles_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cfg");
        assert_eq!(Profiles::load(&config).unwrap(), Profiles::default());
        let mut profiles = Profiles::default();
        profiles.profiles.insert(
            "work".into(),
            Profile {
                server: "https://code.example.com".into(),
                username: Some("ann".into()),
                api_key: Some(Secret::new("cf_x")),
                key_id: Some("k".into()),
                ..Profile::default()
            },
        );
        profiles.active = Some("work".into());
        profiles.save(&config).unwrap();
        assert_eq!(Profiles::load(&config).unwrap(), profiles);
        let mode = std::fs::metadata(config.join(PROFILES_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(profiles.name(None), "work");
        assert_eq!(profiles.name(Some("home")), "home");
        assert_eq!(Profiles::default().name(None), "default");
    }

    #[test]
    fn a_folder_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cfg");
        Profiles::default().save(&config).unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Profiles::load(&config).unwrap_err();
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        assert!(Profiles::default().save(&config).is_err());
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(
            config.join(PROFILES_FILE),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        assert!(Profiles::load(&config).is_err());
    }
}
