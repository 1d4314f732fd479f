//! `coder-server`: the CoderFlow daemon and its admin commands.

// Printing for people is this module's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use coderflow::commands::{ServerCli, init_tracing, print_error};
use coderflow::server::ServeError;

/// Exit code of a daemon that refuses to start on an invalid `oidc.json`.
const EXIT_INVALID_CONFIG: u8 = 2;
/// Exit code of a command line that does not parse (BSD's EX_USAGE); clap's own 2 would read as
/// an invalid `oidc.json`.
const EXIT_USAGE: u8 = 64;

/// Keeps the daemon small: Argon2 allocates 19 MiB per hash; with glibc's default dynamic mmap
/// threshold such blocks end up in the heap and stay resident after use. A fixed threshold
/// returns them to the system at once, and two arenas stop each blocking thread from keeping
/// its own.
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match ServerCli::try_parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.log_format());
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            print_error(&error);
            match error.downcast_ref::<ServeError>() {
                Some(ServeError::InvalidConfig(_)) => ExitCode::from(EXIT_INVALID_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
