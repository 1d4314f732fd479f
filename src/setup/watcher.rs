//! Watches the setup repository folder and signals the reload task.
//!
//! The watcher only signals: it never parses a file (with `--watch-poll` it reads the bytes of
//! `oidc.json`, through the reload's bounded reader, only to compare them). It watches the folder rather than
//! `oidc.json`'s inode, because editors save by writing a new file and renaming it over the old
//! one, and Kubernetes swaps a `..data` symlink. When the folder itself is removed and created
//! again, [`keep_watching`] watches the new one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{CreateKind, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::shutdown::Shutdown;

use super::config::OIDC_FILE;

/// What a file event means for the reload task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchSignal {
    /// `oidc.json` was created or written and a writer may still have it open: wait for the
    /// writer to close it (or for a bounded time) before reading, or a half-written file is read.
    Writing,
    /// Something changed what `oidc.json` reads as (closed after writing, renamed, removed, a
    /// ConfigMap link swapped): read it once the events settle.
    Settled,
}

/// How the setup repository is followed: file events, or polling (`--watch-poll`).
pub(crate) enum FolderWatch {
    Events(SetupWatcher),
    Poll(Duration),
}

impl FolderWatch {
    /// Starts following `root`: polling every `poll` when given, else watching its events
    /// (started here, so that nothing written from now on is missed).
    ///
    /// Fails when the folder cannot be watched.
    pub(crate) fn start(
        root: &Path,
        signal: mpsc::UnboundedSender<WatchSignal>,
        poll: Option<Duration>,
    ) -> Result<FolderWatch, super::SetupError> {
        match poll {
            Some(period) => Ok(FolderWatch::Poll(period)),
            None => watch_setup_repo(root, signal).map(FolderWatch::Events),
        }
    }

    /// Follows the folder until shutdown ([`keep_watching`] or [`poll_setup_repo`]).
    pub(crate) async fn run(
        self,
        root: PathBuf,
        signal: mpsc::UnboundedSender<WatchSignal>,
        shutdown: Shutdown,
    ) {
        match self {
            FolderWatch::Events(watcher) => keep_watching(root, signal, watcher, shutdown).await,
            FolderWatch::Poll(period) => poll_setup_repo(root, signal, period, shutdown).await,
        }
    }
}

/// A running folder watch; dropping it stops the watch.
pub(crate) struct SetupWatcher {
    /// Kept alive for as long as the folder is watched.
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `root` (not recursively). Every event that may change what `<root>/oidc.json`
/// reads as sends one [`WatchSignal`] on `signal`.
///
/// Fails when the folder cannot be watched (it does not exist, or the inotify limit is reached).
pub(crate) fn watch_setup_repo(
    root: &Path,
    signal: mpsc::UnboundedSender<WatchSignal>,
) -> Result<SetupWatcher, super::SetupError> {
    let watched_root = root.to_owned();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_relevant(&watched_root, &event) => {
                let _ = signal.send(classify(&event.kind));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "watching the setup repository failed; checking oidc.json anyway");
                let _ = signal.send(WatchSignal::Settled);
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

/// A creation or a data write means a writer may still be at work; everything else settles.
fn classify(kind: &EventKind) -> WatchSignal {
    match kind {
        EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => {
            WatchSignal::Writing
        }
        _ => WatchSignal::Settled,
    }
}

fn is_close_write(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(notify::event::AccessKind::Close(
            notify::event::AccessMode::Write
        ))
    )
}

/// How often the setup repository folder is checked for having been removed or replaced.
const REWATCH_PERIOD: Duration = Duration::from_millis(500);

/// Keeps the folder watch alive when the setup repository is removed and created again (a
/// fresh `git clone`, a restored backup): a watch follows an inode, so a new folder needs a new
/// watch. Each change of the folder triggers a reload (a missing folder reads as no `oidc.json`:
/// SSO off, local login on).
pub(crate) async fn keep_watching(
    root: PathBuf,
    signal: tokio::sync::mpsc::UnboundedSender<WatchSignal>,
    watcher: SetupWatcher,
    mut shutdown: Shutdown,
) {
    use std::os::unix::fs::MetadataExt;
    // A folder created again may get the old inode number back: its birth time tells them
    // apart where the filesystem records one.
    let identity = |root: &std::path::Path| {
        std::fs::metadata(root)
            .ok()
            .filter(std::fs::Metadata::is_dir)
            .map(|m| (m.dev(), m.ino(), m.created().ok()))
    };
    let mut watched = identity(&root);
    // Replaced whenever the folder is; dropping the old one ends its watch.
    let mut _watcher = Some(watcher);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(REWATCH_PERIOD) => {}
            _ = shutdown.wait() => return,
        }
        let now = identity(&root);
        if now == watched {
            continue;
        }
        watched = now;
        _watcher = None;
        if now.is_some() {
            match watch_setup_repo(&root, signal.clone()) {
                Ok(new) => {
                    tracing::warn!(setup_repo = %root.display(), "the setup repository folder was replaced: watching the new one");
                    _watcher = Some(new);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch the new setup repository folder")
                }
            }
        } else {
            tracing::warn!(setup_repo = %root.display(), "the setup repository folder is gone: SSO is off until it is back");
        }
        let _ = signal.send(WatchSignal::Settled);
    }
}

/// Polls `<root>/oidc.json` every `period` instead of watching it (`--watch-poll`): on a network
/// filesystem inotify never hears of a change made on another machine. Any change of what the
/// file reads as (its bytes, its appearing or disappearing, or an error reading it) signals a
/// reload; the folder may be removed and created again in between.
pub(crate) async fn poll_setup_repo(
    root: PathBuf,
    signal: mpsc::UnboundedSender<WatchSignal>,
    period: Duration,
    mut shutdown: Shutdown,
) {
    tracing::info!(setup_repo = %root.display(), every = ?period, "checking oidc.json by polling (--watch-poll)");
    let path = root.join(OIDC_FILE);
    let read = move || {
        let path = path.clone();
        crate::blocking::run_blocking(move || fingerprint(&path))
    };
    let mut seen = read().await;
    // The first load read the file before this task started: check once more now.
    let _ = signal.send(WatchSignal::Settled);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.wait() => return,
        }
        let now = read().await;
        if now != seen {
            seen = now;
            let _ = signal.send(WatchSignal::Settled);
        }
    }
}

/// What a poll compares: the SHA-256 of the file's bytes (`None`: no file), or why it could not
/// be read. Read as the reload reads it: a FIFO or an oversized file is refused, never waited on.
fn fingerprint(path: &Path) -> Result<Option<[u8; 32]>, std::io::ErrorKind> {
    use sha2::Digest;
    crate::fsutil::read_regular_file(path, super::config::MAX_OIDC_FILE_BYTES)
        .map(|bytes| bytes.map(|b| sha2::Sha256::digest(&b).into()))
        .map_err(|e| e.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, DataChange, RenameMode};
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
    fn writes_wait_for_the_writer_and_the_rest_settles() {
        assert_eq!(
            classify(&EventKind::Modify(ModifyKind::Data(DataChange::Any))),
            WatchSignal::Writing
        );
        assert_eq!(
            classify(&EventKind::Create(CreateKind::File)),
            WatchSignal::Writing
        );
        for settled in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(notify::event::RemoveKind::File),
            EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any)),
        ] {
            assert_eq!(classify(&settled), WatchSignal::Settled, "{settled:?}");
        }
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
