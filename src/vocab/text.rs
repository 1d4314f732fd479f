//! One validation for the names people and clients give things (API keys, device clients,
//! users' display names), so that what one route refuses no other route stores.
//!
//! A name is trimmed, has 1 to `max` characters, and holds no control characters and no
//! characters that reorder or hide text (bidi overrides such as U+202E, which make
//! `exe.txt` read as `txt.exe`, and line separators): a name is shown to other people (the
//! device approval page shows the client's name), so it must read as what it is.

/// Longest key or client name.
pub const MAX_NAME_CHARS: usize = 100;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name has 1 to {0} characters")]
    Length(usize),
    #[error(
        "a name cannot contain control characters or characters that change the direction of text"
    )]
    Hidden,
}

/// Whether `c` is a control character or changes how text around it reads.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `raw` trimmed, when it is a valid name of at most `max` characters.
///
/// Fails when it is empty, too long, or holds hidden characters (see [`is_hidden`]).
pub fn clean_name(raw: &str, max: usize) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(NameError::Length(max));
    }
    if name.chars().any(is_hidden) {
        return Err(NameError::Hidden);
    }
    Ok(name.to_owned())
}

/// `raw` for display when it is not ours to refuse (a User-Agent): hidden characters dropped,
/// at most `max` characters.
pub fn displayable(raw: &str, max: usize) -> String {
    raw.chars()
        .filter(|c| !is_hidden(*c))
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_free_of_hidden_characters() {
        assert_eq!(clean_name("  laptop ", 100).unwrap(), "laptop");
        assert_eq!(
            clean_name("Zoë’s VS Code ✓", 100).unwrap(),
            "Zoë’s VS Code ✓"
        );
        assert_eq!(clean_name("", 100), Err(NameError::Length(100)));
        assert_eq!(
            clean_name(&"x".repeat(101), 100),
            Err(NameError::Length(100))
        );
        for hostile in [
            "evil\u{202E}txt.exe",
            "a\u{1b}[2Jb",
            "a\nb",
            "x\u{2066}y",
            "a\u{200B}b",
        ] {
            assert_eq!(
                clean_name(hostile, 100),
                Err(NameError::Hidden),
                "{hostile:?}"
            );
        }
        assert_eq!(displayable("curl/8\u{202E}\u{1b}x", 200), "curl/8x");
        assert_eq!(displayable(&"y".repeat(300), 200).len(), 200);
    }
}
