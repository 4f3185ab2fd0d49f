//! IAM-style wildcard matching: `*` matches any run of characters (including none), `?` exactly one.
//!
//! IAM uses the same two wildcards in actions, resources and `*Like` condition operators. Action names are
//! compared without regard to case; ARNs and condition values keep their case.

/// Whether `text` matches `pattern`, where `*` and `?` in the pattern are wildcards.
///
/// Runs in O(len(pattern) × len(text)) at worst, without recursion, so hostile patterns cannot blow the stack.
pub fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    // Action names and ARNs are ASCII: compare bytes without allocating (this runs for every catalogue action
    // a pattern is expanded against). Anything else is compared by characters.
    if pattern.is_ascii() && text.is_ascii() {
        let same = |a: &u8, b: &u8| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
        return glob(pattern.as_bytes(), text.as_bytes(), &b'*', &b'?', same);
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let same = |a: &char, b: &char| {
        if ignore_case {
            a == b || a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    glob(&p, &t, &'*', &'?', same)
}

/// The matcher itself, over any symbols: greedy with backtracking to the last `*`.
fn glob<T: PartialEq>(p: &[T], t: &[T], star_symbol: &T, any: &T, same: impl Fn(&T, &T) -> bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was seen in the pattern, and the text position it has consumed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some(s), _) if s == star_symbol => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(pc), Some(tc)) if pc == any || same(pc, tc) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|c| c == star_symbol))
}

/// Whether a pattern holds a wildcard at all.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards_match_as_iam_documents() {
        for (pattern, text, ignore_case, expected) in [
            ("*", "", false, true),
            ("*", "anything", false, true),
            ("iam:Pass*", "iam:PassRole", false, true),
            ("iam:pass*", "IAM:PassRole", true, true),
            ("iam:pass*", "IAM:PassRole", false, false),
            ("iam:?assRole", "iam:PassRole", false, true),
            ("iam:?assRole", "iam:assRole", false, false),
            ("*:*", "s3:GetObject", false, true),
            ("s3:*Object", "s3:GetObjectAcl", false, false),
            ("a*b*c", "aXXbYYc", false, true),
            ("a*b*c", "aXXbYY", false, false),
            ("arn:aws:iam::*:role/*", "arn:aws:iam::123456789012:role/x", false, true),
            ("**?", "", false, false),
            ("ré*", "RÉSUMÉ", true, true),
            ("ré*", "RÉSUMÉ", false, false),
        ] {
            assert_eq!(matches(pattern, text, ignore_case), expected, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn hostile_pattern_finishes() {
        let pattern = "*a".repeat(2000);
        let text = "a".repeat(3000) + "b";
        assert!(!matches(&pattern, &text, false));
    }
}
