//! How errors read: one line with every cause of a chain (for logs, statuses and answers
//! written for people), and the `error:` / `Caused by:` lines the binaries print.

// Printing for people is this module's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// An error with its causes, in one line: `a: b: c` (a cause already contained in the text
/// before it is not repeated).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

/// Prints `error` for a person on stderr: one `error:` line per line of its message, then its
/// causes under `Caused by:`.
pub fn print_error(error: &anyhow::Error) {
    for line in error.to_string().lines() {
        eprintln!("error: {line}");
    }
    let causes: Vec<_> = error.chain().skip(1).collect();
    if !causes.is_empty() {
        eprintln!("\nCaused by:");
        for cause in causes {
            eprintln!("    {cause}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_chain_reads_as_one_line() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
    }
}
