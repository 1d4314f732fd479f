//! Crash-safe file writes for the setup repository and the CLI's profiles.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many random names are tried before giving up (a clash means someone plants files).
const TEMP_TRIES: usize = 16;

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename over
/// the target, fsync of the folder. Readers see the old content or the new, never a mix. The file
/// gets `mode` (e.g. `0o600` for files holding secrets).
///
/// The temporary file has a random name and is created exclusively without following links
/// (`O_CREAT | O_EXCL | O_NOFOLLOW`), so a file or symlink planted in the folder is never
/// written through; the rename replaces a symlink at `path` itself, never its target.
///
/// Fails when the folder is not writable or the disk is full; the target is then unchanged.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut file, tmp) = create_temp(dir, &name, mode)?;
    let result = (|| {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A new file `.<name>.tmp-<random>` in `dir`, created exclusively, links not followed.
fn create_temp(dir: &Path, name: &str, mode: u32) -> std::io::Result<(std::fs::File, PathBuf)> {
    let mut last = None;
    for _ in 0..TEMP_TRIES {
        let mut random = [0u8; 12];
        rand::fill(&mut random[..]);
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = dir.join(format!(".{name}.tmp-{suffix}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// The bytes of the regular file at `path` (links followed), `None` when it does not exist.
/// Anything but a regular file (a FIFO would block the read forever) is refused before it is
/// opened, and so is a file larger than `max` bytes. Blocking.
pub(crate) fn read_regular_file(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            if max % (1024 * 1024) == 0 {
                format!("larger than {} MiB", max / (1024 * 1024))
            } else {
                format!("larger than {max} bytes")
            },
        ));
    }
    Ok(Some(bytes))
}

/// Whether this process may create and remove files in the folder `dir` (`access(2)` with
/// `W_OK`: false on a read-only mount, such as a Kubernetes ConfigMap, or an immutable folder).
pub(crate) fn is_writable_dir(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// Whether a failed write failed because the place is read-only to us (not a full disk).
pub(crate) fn is_read_only_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    ) || e.raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_with_the_given_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oidc.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("oidc.json");
        // The old predictable names, and the target itself, as symlinks to the victim.
        std::os::unix::fs::symlink(
            &victim,
            dir.path()
                .join(format!(".oidc.json.tmp-{}", std::process::id())),
        )
        .unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_atomic(&path, b"secret", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(
            meta.file_type().is_file(),
            "oidc.json is a regular file again"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "secret");
    }

    #[test]
    fn temporary_names_are_random() {
        let dir = tempfile::tempdir().unwrap();
        let (_a, first) = create_temp(dir.path(), "x", 0o600).unwrap();
        let (_b, second) = create_temp(dir.path(), "x", 0o600).unwrap();
        assert_ne!(first, second);
    }
}
