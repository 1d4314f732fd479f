//! Text that came from a server, made safe for a terminal. A hostile or spoofed server could
//! otherwise send escape sequences that clear the screen, set the window title, write the
//! clipboard or draw hyperlinks, or bidi characters that make text read differently: every
//! control or text-direction character is shown escaped (`\u{1b}`) instead.

use crate::vocab::text::is_hidden;

/// `text` with control and text-direction characters escaped, at most `max` characters of it.
pub(crate) fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if is_hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON text with every control or text-direction character written as a `\uXXXX` escape
/// (serde escapes the C0 controls only; a bidi override would still reorder the terminal).
pub(crate) fn json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if is_hidden(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// [`clean`] for a short value (a name, a code): at most 200 characters.
pub(crate) fn short(text: &str) -> String {
    clean(text, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_reach_the_terminal_only_as_text() {
        assert_eq!(short("ann"), "ann");
        assert_eq!(short("\u{1b}]0;pwned\u{7}"), "\\u{1b}]0;pwned\\u{7}");
        assert_eq!(short("a\u{202E}b\r\n"), "a\\u{202e}b\\u{d}\\u{a}");
        assert_eq!(clean("abcdef", 3), "abc…");
        assert!(!short("\u{9b}31m").contains('\u{9b}'), "C1 controls too");
        let value = serde_json::json!({"name": "a\u{202e}b\u{1b}"});
        let printed = json(&value);
        assert_eq!(printed, r#"{"name":"a\u202eb\u001b"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(parsed, value, "still the same JSON");
    }
}
