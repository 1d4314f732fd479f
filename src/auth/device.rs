//! Device login codes (RFC 8628): the user code alphabet, its display form and how typed input
//! is normalised. The flow itself lives in `crate::http::device`; records in the store.

/// Consonants only, no look-alikes and no vowels (so codes never spell words).
pub(crate) const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code.
pub(crate) const USER_CODE_LEN: usize = 8;

/// A fresh random user code, normalised (8 letters, no dash).
pub(crate) fn new_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut byte = [0u8; 1];
        rand::fill(&mut byte);
        // 240 is the largest multiple of 20 below 256: no modulo bias.
        if byte[0] < 240 {
            code.push(USER_CODE_ALPHABET[usize::from(byte[0]) % 20] as char);
        }
    }
    code
}

/// `BCDFGHJK` shown as `BCDF-GHJK`.
pub(crate) fn display_user_code(normalised: &str) -> String {
    if normalised.len() == USER_CODE_LEN {
        format!("{}-{}", &normalised[..4], &normalised[4..])
    } else {
        normalised.to_owned()
    }
}

/// Typed input as a normalised code: case, dashes and spaces ignored. `None` when it cannot be
/// a code at all.
pub(crate) fn normalise_user_code(input: &str) -> Option<String> {
    if input.len() > 64 {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_show_with_a_dash() {
        for _ in 0..100 {
            let code = new_user_code();
            assert_eq!(normalise_user_code(&code).as_deref(), Some(code.as_str()));
            let shown = display_user_code(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
        }
    }

    #[test]
    fn input_is_normalised_for_case_dashes_and_spaces() {
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code(" BCDF GHJK\n").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code("B-C-D-F-G-H-J-K").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "ВCDF-GHJK",
        ] {
            assert_eq!(normalise_user_code(bad), None, "{bad:?}");
        }
    }
}
