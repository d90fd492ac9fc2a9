//! Shell-style patterns for comments, executables, process names and user names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest pattern accepted, in bytes.
const MAX_LEN: usize = 1024;

/// A pattern: `*` matches any run of characters (including `/`), `?` exactly one
/// character, `\` makes the next character literal; everything else matches itself,
/// case-sensitively. A pattern without wildcards is an exact match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern is empty (it could only match an empty string; write `"*"` for any).
    #[error("empty pattern (write \"*\" to match anything)")]
    Empty,
    /// The pattern is longer than 1024 bytes.
    #[error("pattern longer than {MAX_LEN} bytes")]
    TooLong,
    /// The pattern holds a control character (NUL, newline, ...).
    #[error("pattern holds a control character")]
    Control,
    /// The pattern ends with a lone `\`.
    #[error("pattern ends with a lone backslash")]
    TrailingEscape,
}

impl Glob {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        // Iterative matching with one back-track point (the last `*`): linear in most
        // cases, O(pattern × text) at worst, no recursion.
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match (self.tokens.get(p), text.get(t)) {
                (Some(Token::AnyRun), _) => {
                    star = Some((p, t));
                    p += 1;
                }
                (Some(Token::AnyOne), Some(_)) => {
                    p += 1;
                    t += 1;
                }
                (Some(Token::Literal(want)), Some(got)) if want == got => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p + 1;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens
            .get(p..)
            .is_some_and(|rest| rest.iter().all(|token| *token == Token::AnyRun))
    }
}

impl FromStr for Glob {
    type Err = GlobError;

    fn from_str(text: &str) -> Result<Glob, GlobError> {
        if text.is_empty() {
            return Err(GlobError::Empty);
        }
        if text.len() > MAX_LEN {
            return Err(GlobError::TooLong);
        }
        let mut tokens = Vec::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c.is_control() {
                return Err(GlobError::Control);
            }
            tokens.push(match c {
                '*' => Token::AnyRun,
                '?' => Token::AnyOne,
                '\\' => match chars.next() {
                    Some(next) if next.is_control() => return Err(GlobError::Control),
                    Some(next) => Token::Literal(next),
                    None => return Err(GlobError::TrailingEscape),
                },
                other => Token::Literal(other),
            });
        }
        // Runs of `*` are one `*`; collapsing keeps the matcher's back-tracking small.
        tokens.dedup_by(|a, b| *a == Token::AnyRun && *b == Token::AnyRun);
        Ok(Glob {
            text: text.to_owned(),
            tokens,
        })
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Glob, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(text: &str) -> Glob {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn matches_like_a_shell() {
        assert!(glob("deploy-*").matches("deploy-prod"));
        assert!(glob("deploy-*").matches("deploy-"));
        assert!(!glob("deploy-*").matches("my-deploy-prod"));
        assert!(glob("/usr/bin/ssh").matches("/usr/bin/ssh"));
        assert!(!glob("/usr/bin/ssh").matches("/usr/bin/ssh-add"));
        assert!(glob("/usr/*/ssh*").matches("/usr/local/bin/ssh-add"));
        assert!(glob("a?c").matches("abc"));
        assert!(!glob("a?c").matches("ac"));
        assert!(glob("*").matches(""));
        assert!(glob("**a**").matches("bab"));
        assert!(glob("*ab*ab").matches("xxabyyabab"));
        assert!(!glob("*ab*ab").matches("xxabyyaba"));
        assert!(glob(r"a\*").matches("a*"));
        assert!(!glob(r"a\*").matches("ab"));
        assert!(glob("é?").matches("éü"));
    }

    #[test]
    fn refuses_bad_patterns() {
        assert_eq!("".parse::<Glob>(), Err(GlobError::Empty));
        assert_eq!("a\nb".parse::<Glob>(), Err(GlobError::Control));
        assert_eq!("ab\\".parse::<Glob>(), Err(GlobError::TrailingEscape));
        assert_eq!("a".repeat(1025).parse::<Glob>(), Err(GlobError::TooLong));
    }

    /// A slow, obviously right reference matcher.
    fn reference(pattern: &[Token], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((Token::AnyRun, rest)) => {
                (0..=text.len()).any(|skip| reference(rest, text.get(skip..).unwrap_or(&[])))
            }
            Some((Token::AnyOne, rest)) => {
                !text.is_empty() && reference(rest, text.get(1..).unwrap_or(&[]))
            }
            Some((Token::Literal(c), rest)) => {
                text.first() == Some(c) && reference(rest, text.get(1..).unwrap_or(&[]))
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_reference(pattern in "[ab*?]{1,8}", text in "[ab]{0,10}") {
            let compiled = glob(&pattern);
            let chars: Vec<char> = text.chars().collect();
            proptest::prop_assert_eq!(
                compiled.matches(&text),
                reference(&compiled.tokens, &chars)
            );
        }

        #[test]
        fn a_literal_matches_itself(text in "[^*?\\\\\\p{Cc}]{1,40}") {
            proptest::prop_assert!(glob(&text).matches(&text));
        }
    }
}
