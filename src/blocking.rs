//! The one way blocking work (libgit2, file I/O, later Argon2 and sled flushes) leaves the async
//! runtime.

/// Runs `f` on tokio's blocking pool and returns its result. A panic in `f` is resumed on the
/// caller, as if `f` had run inline.
pub(crate) async fn run_blocking<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
