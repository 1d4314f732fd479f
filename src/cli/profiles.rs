//! Server profiles of the `coder` client: `$CODER_CONFIG_DIR/profiles.json` (default: the
//! platform config folder, `~/.config/coderflow/profiles.json`), written atomically with mode
//! 0600 because it holds API keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::setup::fsutil::write_atomic;

/// The file's name in the config folder.
pub const PROFILES_FILE: &str = "profiles.json";
/// The profile used when none was chosen.
pub const DEFAULT_PROFILE: &str = "default";

/// One server and the credentials for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
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
}

/// Every profile and the active one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profiles {
    /// The profile commands use without `--profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// The config folder: `$CODER_CONFIG_DIR`, else `$XDG_CONFIG_HOME/coderflow`, else
/// `~/.config/coderflow`.
///
/// Fails when none of these can be found.
pub fn config_dir() -> anyhow::Result<PathBuf> {
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
    pub fn load(dir: &Path) -> anyhow::Result<Profiles> {
        let path = dir.join(PROFILES_FILE);
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
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        let path = dir.join(PROFILES_FILE);
        write_atomic(&path, &bytes, 0o600)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The name of the profile to use: `requested`, else the active one, else `default`.
    pub fn name(&self, requested: Option<&str>) -> String {
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
}
