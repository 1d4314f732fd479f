//! Watches the setup repository folder and signals the reload task.
//!
//! The watcher only signals: it never reads or parses a file. It watches the folder rather than
//! `oidc.json`'s inode, because editors save by writing a new file and renaming it over the old
//! one, and Kubernetes swaps a `..data` symlink.

use std::path::Path;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::config::OIDC_FILE;

/// A running folder watch; dropping it stops the watch.
pub struct SetupWatcher {
    /// Kept alive for as long as the folder is watched.
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `root` (not recursively). Every event that may change what `<root>/oidc.json`
/// reads as sends one `()` on `signal`.
///
/// Fails when the folder cannot be watched (it does not exist, or the inotify limit is reached).
pub fn watch_setup_repo(
    root: &Path,
    signal: mpsc::UnboundedSender<()>,
) -> Result<SetupWatcher, super::SetupError> {
    let watched_root = root.to_owned();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_relevant(&watched_root, &event) => {
                let _ = signal.send(());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "watching the setup repository failed; checking oidc.json anyway");
                let _ = signal.send(());
            }
        })
        .map_err(|e| super::SetupError::Watch {
            root: root.to_owned(),
            source: e,
        })?;
    watcher
        .watch(root, RecursiveMode::NonRecursive)
        .map_err(|e| super::SetupError::Watch {
            root: root.to_owned(),
            source: e,
        })?;
    Ok(SetupWatcher { _watcher: watcher })
}

/// Whether an event may have changed `oidc.json`: it names `oidc.json` itself, a Kubernetes
/// ConfigMap entry (`..data`, `..2024_…`) that `oidc.json` may link through, or the folder
/// itself; or the kernel dropped events.
fn is_relevant(root: &Path, event: &notify::Event) -> bool {
    if event.need_rescan() {
        return true;
    }
    if matches!(event.kind, EventKind::Access(_)) && !is_close_write(&event.kind) {
        return false;
    }
    event.paths.iter().any(|path| {
        path == root
            || path.file_name().is_some_and(|name| {
                let name = name.to_string_lossy();
                name == OIDC_FILE || name.starts_with("..")
            })
    })
}

fn is_close_write(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(notify::event::AccessKind::Close(
            notify::event::AccessMode::Write
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
    use std::path::PathBuf;

    fn event(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn relevant_events_name_the_file_configmap_entries_or_the_folder() {
        let root = Path::new("/s");
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(is_relevant(root, &event(modify, &["/s/oidc.json"])));
        assert!(is_relevant(
            root,
            &event(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/s/.oidc.json.tmp", "/s/oidc.json"]
            )
        ));
        assert!(is_relevant(
            root,
            &event(EventKind::Create(CreateKind::Any), &["/s/..data"])
        ));
        assert!(is_relevant(
            root,
            &event(
                EventKind::Remove(notify::event::RemoveKind::Folder),
                &["/s"]
            )
        ));
        assert!(is_relevant(
            root,
            &event(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &["/s/oidc.json"]
            )
        ));
    }

    #[test]
    fn other_files_and_reads_are_ignored() {
        let root = Path::new("/s");
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(!is_relevant(root, &event(modify, &["/s/README.md"])));
        assert!(!is_relevant(root, &event(modify, &["/s/.oidc.json.swp"])));
        assert!(!is_relevant(
            root,
            &event(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                &["/s/oidc.json"]
            )
        ));
    }
}
