//! The xl.cfg(5) syntax: `key = value` settings, one per line (a `;` may end one), with
//! values that are strings (single or double quotes, C escapes), integers (decimal or
//! `0x` hex) or lists `[ ... ]` of those, which may span lines and end with a comma; `#`
//! starts a comment. A key given twice keeps its last value, as in xl.

use std::fmt;

/// A value and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    List(Vec<(Value, usize)>),
}

/// One `key = value` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub line: usize,
}

/// A parsed file: its settings in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub file: String,
    pub settings: Vec<Setting>,
}

/// An error in a configuration file, naming the file, the line and the key at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}:{}: {}: {}", self.file, self.line, k, self.message),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The last setting of `key`.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.key == key)
    }

    /// An error about `setting`'s value.
    pub fn error(&self, setting: &Setting, message: impl Into<String>) -> ConfigError {
        self.error_at(setting.line, Some(&setting.key), message)
    }

    /// An error at `line` about `key`.
    pub fn error_at(&self, line: usize, key: Option<&str>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.clone(), line, key: key.map(String::from), message: message.into() }
    }
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    file: &'a str,
}

impl<'a> Lexer<'a> {
    fn err(&self, key: Option<&str>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.into(), line: self.line, key: key.map(String::from), message: message.into() }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips blanks and comments; newlines too if `newlines`.
    fn skip(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => {
                    self.bump();
                }
                b'\n' if newlines => {
                    self.bump();
                }
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
    }

    fn key(&mut self) -> Result<String, ConfigError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
            self.bump();
        }
        let k = &self.src[start..self.pos];
        if k.is_empty() || k[0].is_ascii_digit() {
            return Err(self.err(None, "expected a setting name"));
        }
        Ok(String::from_utf8_lossy(k).into_owned())
    }

    fn value(&mut self, key: &str, in_list: bool) -> Result<Value, ConfigError> {
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.string(key, q).map(Value::Str),
            Some(b'[') if !in_list => self.list(key),
            Some(b'[') => Err(self.err(Some(key), "lists inside lists are not supported")),
            Some(c) if c.is_ascii_digit() || c == b'-' => self.number(key),
            Some(b'\n') | None => Err(self.err(Some(key), "a value is missing")),
            Some(c) => Err(self.err(Some(key), format!("unexpected `{}` (strings need quotes)", c as char))),
        }
    }

    fn string(&mut self, key: &str, quote: u8) -> Result<String, ConfigError> {
        self.bump();
        let mut out = Vec::new();
        loop {
            // A string ends on its line: the newline is not consumed, so errors name the line.
            let next = |lx: &mut Self| match lx.peek() {
                None | Some(b'\n') => Err(lx.err(Some(key), "unterminated string")),
                Some(_) => Ok(lx.bump().unwrap_or(0)),
            };
            match next(self)? {
                c if c == quote => break,
                b'\\' => {
                    let c = next(self)?;
                    match c {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'\\' | b'"' | b'\'' => out.push(c),
                        b'x' => {
                            let mut v = 0u8;
                            for _ in 0..2 {
                                let d = self.bump().and_then(|d| (d as char).to_digit(16));
                                let d = d.ok_or_else(|| self.err(Some(key), "bad \\x escape"))?;
                                v = v.wrapping_mul(16).wrapping_add(d as u8);
                            }
                            out.push(v);
                        }
                        b'0'..=b'7' => {
                            let mut v = u32::from(c - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        self.bump();
                                        v = v * 8 + u32::from(d - b'0');
                                    }
                                    _ => break,
                                }
                            }
                            out.push(u8::try_from(v).map_err(|_| self.err(Some(key), "bad octal escape"))?);
                        }
                        _ => return Err(self.err(Some(key), format!("unknown escape \\{}", c as char))),
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.err(Some(key), "the string is not UTF-8"))
    }

    fn number(&mut self, key: &str) -> Result<Value, ConfigError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-') {
            self.bump();
        }
        let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
        let (neg, body) = match text.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, text.as_str()),
        };
        let parsed = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            Some(hex) => i64::from_str_radix(hex, 16),
            None => body.parse::<i64>(),
        };
        let n = parsed.map_err(|_| self.err(Some(key), format!("`{text}` is not a number")))?;
        Ok(Value::Int(if neg { -n } else { n }))
    }

    fn list(&mut self, key: &str) -> Result<Value, ConfigError> {
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip(true);
            match self.peek() {
                Some(b']') => {
                    self.bump();
                    return Ok(Value::List(items));
                }
                None => return Err(self.err(Some(key), "the list has no closing `]`")),
                _ => {}
            }
            let line = self.line;
            items.push((self.value(key, true)?, line));
            self.skip(true);
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(b']') => {}
                None => return Err(self.err(Some(key), "the list has no closing `]`")),
                Some(c) => return Err(self.err(Some(key), format!("expected `,` or `]`, found `{}`", c as char))),
            }
        }
    }
}

/// Parses the text of file `file`.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let mut lx = Lexer { src: text.as_bytes(), pos: 0, line: 1, file };
    let mut settings = Vec::new();
    loop {
        lx.skip(true);
        while lx.peek() == Some(b';') {
            lx.bump();
            lx.skip(true);
        }
        if lx.peek().is_none() {
            break;
        }
        let line = lx.line;
        let key = lx.key()?;
        lx.skip(false);
        if lx.bump() != Some(b'=') {
            return Err(ConfigError { file: file.into(), line, key: Some(key), message: "expected `=`".into() });
        }
        lx.skip(false);
        let value = lx.value(&key, false)?;
        lx.skip(false);
        match lx.peek() {
            None | Some(b'\n') | Some(b';') => {}
            Some(c) => return Err(lx.err(Some(&key), format!("unexpected `{}` after the value", c as char))),
        }
        settings.push(Setting { key, value, line });
    }
    Ok(Config { file: file.into(), settings })
}

/// Writes a value in xl.cfg syntax (strings double-quoted and escaped).
pub fn render(value: &Value) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        Value::Str(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(|(v, _)| render(v)).collect();
            format!("[ {} ]", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xl_cfg_syntax() {
        let text = "# a guest\nname = \"web\"\nmemory=512 # MiB\nkernel = '/boot/vmlinuz'\n\
                    disk = [ 'phy:/dev/vg/web,xvda,w',\n   \"file:/x.img,xvdb,r\", # second\n ]\n\
                    maxmem = 0x400; vcpus = 2\nextra = \"a\\tb\\x41\\101\"\n";
        let c = parse("web.cfg", text).unwrap();
        assert_eq!(c.get("name").unwrap().value, Value::Str("web".into()));
        assert_eq!(c.get("memory").unwrap().value, Value::Int(512));
        assert_eq!(c.get("maxmem").unwrap().value, Value::Int(1024));
        assert_eq!(c.get("vcpus").unwrap().line, 8);
        assert_eq!(c.get("extra").unwrap().value, Value::Str("a\tbAA".into()));
        let Value::List(disks) = &c.get("disk").unwrap().value else { panic!() };
        assert_eq!(disks.len(), 2);
        assert_eq!(disks[1], (Value::Str("file:/x.img,xvdb,r".into()), 6));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("g.cfg", "name = \"a\"\nmemory = lots\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (2, Some("memory")));
        assert_eq!(e.to_string(), "g.cfg:2: memory: unexpected `l` (strings need quotes)");
        let e = parse("g.cfg", "\n\ndisk = [ 'a',\n 'b'\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (5, Some("disk")));
        let e = parse("g.cfg", "name \"x\"\n").unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:1: name: expected `=`");
        let e = parse("g.cfg", "a = 'x\n").unwrap_err();
        assert_eq!(e.message, "unterminated string");
        let e = parse("g.cfg", "a = 1 2\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("g.cfg", "a = [[1]]\n").unwrap_err();
        assert!(e.message.contains("inside lists"));
        let e = parse("g.cfg", "a = 99999999999999999999\n").unwrap_err();
        assert!(e.message.contains("not a number"));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_filter("no MIN", |n| *n != i64::MIN).prop_map(Value::Int),
                "[ -~\t\n]{0,12}".prop_map(Value::Str)
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                3 => scalar(),
                1 => prop::collection::vec(scalar(), 0..4).prop_map(|v| Value::List(v.into_iter().map(|x| (x, 0)).collect())),
            ]
        }

        fn strip_lines(v: &Value) -> Value {
            match v {
                Value::List(items) => Value::List(items.iter().map(|(x, _)| (strip_lines(x), 0)).collect()),
                x => x.clone(),
            }
        }

        proptest! {
            #[test]
            fn rendered_settings_parse_back(
                settings in prop::collection::vec(("[a-z_][a-z0-9_]{0,8}", value()), 0..8),
                comments in prop::collection::vec(any::<bool>(), 8),
            ) {
                let mut text = String::new();
                for (i, (k, v)) in settings.iter().enumerate() {
                    if comments[i] {
                        text.push_str("# comment = 'x'\n\n");
                    }
                    text.push_str(&format!("{k} = {}\n", render(v)));
                }
                let c = parse("p.cfg", &text).unwrap();
                let got: Vec<(String, Value)> = c.settings.iter().map(|s| (s.key.clone(), strip_lines(&s.value))).collect();
                let want: Vec<(String, Value)> = settings.iter().map(|(k, v)| (k.clone(), strip_lines(v))).collect();
                prop_assert_eq!(got, want);
            }

            #[test]
            fn errors_carry_the_line(good_before in 0usize..20, bad in prop::sample::select(vec!["x = 'open", "x = [1,", "x = @", "= 3", "x 3", "x = 1 1"])) {
                let mut text = String::new();
                for i in 0..good_before {
                    text.push_str(&format!("k{i} = {i}\n"));
                }
                text.push_str(bad);
                text.push('\n');
                let e = parse("p.cfg", &text).unwrap_err();
                let expected = if bad == "x = [1," { good_before + 2 } else { good_before + 1 };
                prop_assert_eq!(e.line, expected, "{}", e);
            }

            #[test]
            fn garbage_never_panics(text in "\\PC{0,200}") {
                let _ = parse("g.cfg", &text);
            }
        }
    }
}
