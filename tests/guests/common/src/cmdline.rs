//! The test guest's command line: words `key=value` (and bare words).

/// The value of `key=` on `cmdline`, if present.
pub fn get<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|w| w.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// The value of `key=` as a number (decimal or `0x` hex).
pub fn get_u64(cmdline: &str, key: &str) -> Option<u64> {
    let v = get(cmdline, key)?;
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_words() {
        let c = "console=hvc0 keel.test=hypercalls keel.peer=2 keel.n=0x10";
        assert_eq!(get(c, "keel.test"), Some("hypercalls"));
        assert_eq!(get(c, "keel.tes"), None);
        assert_eq!(get_u64(c, "keel.peer"), Some(2));
        assert_eq!(get_u64(c, "keel.n"), Some(16));
        assert_eq!(get(c, "missing"), None);
    }
}
