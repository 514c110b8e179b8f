//! `LIKE` patterns: `%` matches any run of characters (also none), `_` exactly one character,
//! everything else itself (case-sensitive, no escape character). The pattern must match the
//! whole string.

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// A run of literal characters.
    Text(String),
    /// `_`: one character.
    One,
    /// `%` (several in a row count as one): any run of characters.
    Any,
}

/// A compiled `LIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    pieces: Vec<Piece>,
}

/// Byte length of the character starting at byte `i` of `s`, if any.
fn char_len(s: &str, i: usize) -> Option<usize> {
    s.get(i..)?.chars().next().map(char::len_utf8)
}

impl Pattern {
    /// Compiles a pattern.
    pub(super) fn new(pattern: &str) -> Pattern {
        let mut pieces: Vec<Piece> = Vec::new();
        for c in pattern.chars() {
            match c {
                '%' => {
                    if pieces.last() != Some(&Piece::Any) {
                        pieces.push(Piece::Any);
                    }
                }
                '_' => pieces.push(Piece::One),
                c => match pieces.last_mut() {
                    Some(Piece::Text(t)) => t.push(c),
                    _ => pieces.push(Piece::Text(c.to_string())),
                },
            }
        }
        Pattern { pieces }
    }

    /// Whether the whole of `s` matches. Greedy, going back only to the last `%` on a
    /// mismatch: O(len(s) × len(pattern)) at worst, without allocating.
    pub(super) fn matches(&self, s: &str) -> bool {
        // The next piece, and the byte offset in `s` where it must match.
        let mut p = 0;
        let mut i = 0;
        // After the last `%` seen: the piece following it, and where in `s` its match starts.
        let mut resume: Option<(usize, usize)> = None;
        loop {
            let advanced = match self.pieces.get(p) {
                Some(Piece::Any) => {
                    resume = Some((p + 1, i));
                    p += 1;
                    continue;
                }
                Some(Piece::One) => char_len(s, i).map(|n| i + n),
                Some(Piece::Text(t)) => s
                    .get(i..)
                    .is_some_and(|rest| rest.starts_with(t.as_str()))
                    .then(|| i + t.len()),
                None if i == s.len() => return true,
                None => None,
            };
            match advanced {
                Some(next) => {
                    i = next;
                    p += 1;
                }
                // Let the last `%` take one more character and retry from there.
                None => match resume {
                    Some((rp, ri)) => match char_len(s, ri) {
                        Some(n) => {
                            resume = Some((rp, ri + n));
                            p = rp;
                            i = ri + n;
                        }
                        None => return false,
                    },
                    None => return false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn like(s: &str, p: &str) -> bool {
        Pattern::new(p).matches(s)
    }

    #[test]
    fn wildcards_match_the_whole_string() {
        assert!(like("a_b", "a_b"));
        assert!(like("a%b", "a_b"));
        assert!(!like("ab", "a_b"));
        assert!(like("abc", "a%"));
        assert!(!like("xabc", "a%"));
        assert!(like("", "%"));
        assert!(like("", ""));
        assert!(!like("a", ""));
        assert!(like("abcabd", "%abd"));
        assert!(like("aaab", "%a%ab"));
        assert!(!like("ABC", "abc"));
        assert!(like("mississippi", "m%iss%pi"));
        assert!(!like("mississippi", "m%iss%pix"));
        assert!(like("héllo wörld", "h_llo w_rld"));
        assert!(like("日本語", "_本_"));
        assert!(!like("日本語", "__"));
        assert!(like("a%%b", "a%%b"));
        assert!(like("ab", "%%%a%%%b%%%"));
    }
}
