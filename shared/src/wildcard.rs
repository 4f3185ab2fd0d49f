//! IAM-style wildcard matching: `*` matches any run of characters (including none), `?` exactly one.
//!
//! IAM uses the same two wildcards in actions, resources and `*Like` condition operators. Action names are
//! compared without regard to case; ARNs and condition values keep their case.

/// Whether `text` matches `pattern`, where `*` and `?` in the pattern are wildcards.
///
/// Runs in O(len(pattern) × len(text)) at worst, without recursion, so hostile patterns cannot blow the stack.
#[inline]
pub fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    // Most patterns start with a literal that the text does not start with (agent names, resource names): told
    // apart where the caller runs, before anything else.
    if !literal_start_agrees(pattern.as_bytes(), text.as_bytes(), ignore_case) {
        return false;
    }
    matches_all(pattern, text, ignore_case)
}

/// Whether the text may start as the pattern's literal start does: `false` only when an ASCII byte of the text
/// differs from the pattern's, before any wildcard. The comparison stops at the first non-ASCII byte on either
/// side (a non-ASCII letter may fold to an ASCII one, the Kelvin sign to `k`), so bytes stand for characters.
#[inline]
fn literal_start_agrees(pattern: &[u8], text: &[u8], ignore_case: bool) -> bool {
    for (p, t) in pattern.iter().zip(text) {
        if *p == b'*' || *p == b'?' || !p.is_ascii() || !t.is_ascii() {
            return true;
        }
        if !(if ignore_case { p.eq_ignore_ascii_case(t) } else { p == t }) {
            return false;
        }
    }
    true
}

/// [`matches`] past its first look.
fn matches_all(pattern: &str, text: &str, ignore_case: bool) -> bool {
    // Action names and ARNs are ASCII: compare bytes without allocating (this runs for every catalogue action
    // a pattern is expanded against). Anything else is compared by characters.
    if pattern.is_ascii() && text.is_ascii() {
        // `*name*` (agent names anywhere in an ARN or session name) is a search for the name.
        let inner = pattern.strip_prefix('*').and_then(|p| p.strip_suffix('*'));
        if let Some(inner) = inner.filter(|inner| !inner.is_empty() && !has_wildcard(inner)) {
            return contains_ascii(text.as_bytes(), inner.as_bytes(), ignore_case);
        }
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

/// Whether ASCII `text` holds `needle`, ignoring case if asked: only where its first byte is (found by `memchr`,
/// in either case) is the rest compared.
pub(crate) fn contains_ascii(text: &[u8], needle: &[u8], ignore_case: bool) -> bool {
    let same = |a: &u8, b: &u8| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    let Some((first, rest)) = needle.split_first() else { return true };
    let Some(starts) = text.len().checked_sub(needle.len()).and_then(|last| text.get(..=last)) else { return false };
    let (lower, upper) =
        if ignore_case { (first.to_ascii_lowercase(), first.to_ascii_uppercase()) } else { (*first, *first) };
    memchr::memchr2_iter(lower, upper, starts)
        .any(|at| text.get(at + 1..).is_some_and(|after| after.iter().zip(rest).all(|(a, b)| same(a, b))))
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
                    // The `*` takes one more symbol, and then every symbol the pattern's next literal cannot
                    // match (`*-agent*` over an ARN: most positions are passed over without the full step).
                    let mut next = st + 1;
                    if let Some(literal) = p.get(sp + 1).filter(|c| *c != star_symbol && *c != any) {
                        while t.get(next).is_some_and(|tc| !same(literal, tc)) {
                            next += 1;
                        }
                    }
                    pi = sp + 1;
                    ti = next;
                    star = Some((sp, next));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|c| c == star_symbol))
}

/// Whether a pattern holds a wildcard at all.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.bytes().any(|b| b == b'*' || b == b'?')
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
            // The Kelvin sign folds to `k`: a first letter that differs in bytes may still match.
            ("k*", "\u{212A}elvin", true, true),
            ("K*", "kelvin", false, false),
            // The literal start is compared where `matches` is called, up to its first wildcard or non-ASCII byte.
            ("ai-agent*", "arn:aws:iam::123456789012:role/x", true, false),
            ("ai-agent*", "AI-AGENT-7", true, true),
            ("ak*", "a\u{212A}-run", true, true),
            ("ab?d*", "abXd", false, true),
            ("ab?d*", "aBXd", false, false),
        ] {
            assert_eq!(matches(pattern, text, ignore_case), expected, "{pattern} ~ {text}");
        }
    }

    /// The definition itself, by recursion over characters, case folded as Unicode does when `ignore_case`: slow,
    /// but plainly right.
    fn reference(p: &[char], t: &[char], ignore_case: bool) -> bool {
        let same = |a: &char, b: &char| if ignore_case { a.to_lowercase().eq(b.to_lowercase()) } else { a == b };
        match (p.split_first(), t.split_first()) {
            (None, _) => t.is_empty(),
            (Some(('*', rest)), _) => {
                reference(rest, t, ignore_case) || t.split_first().is_some_and(|(_, t)| reference(p, t, ignore_case))
            }
            (Some((c, rest)), Some((d, t))) => (*c == '?' || same(c, d)) && reference(rest, t, ignore_case),
            (Some(_), None) => false,
        }
    }

    /// `matches` against [`reference`], for the property tests.
    fn agrees_with_definition(
        pattern: &str,
        text: &str,
        ignore_case: bool,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        let expected = reference(&chars(pattern), &chars(text), ignore_case);
        proptest::prop_assert_eq!(matches(pattern, text, ignore_case), expected, "{} ~ {}", pattern, text);
        Ok(())
    }

    proptest::proptest! {
        /// Over a small alphabet, so that literals after a `*` recur in the text and the `*` must give way often;
        /// `é`/`É` and the Kelvin sign (which folds to `k`) take the non-ASCII path.
        #[test]
        fn wildcards_match_as_their_definition(pattern in "[abké*?-]{0,8}", text in "[aAbBkKéÉ\u{212A}-]{0,12}") {
            agrees_with_definition(&pattern, &text, true)?;
        }
    }

    proptest::proptest! {
        /// The same, keeping case: each character must be the same character.
        #[test]
        fn wildcards_match_case_sensitively_as_their_definition(
            pattern in "[abK*?-]{0,8}", text in "[aAbBkK\u{212A}-]{0,12}"
        ) {
            agrees_with_definition(&pattern, &text, false)?;
        }
    }

    proptest::proptest! {
        /// `*name*`, searched for rather than matched, against the definition, in both cases.
        #[test]
        fn a_name_anywhere_is_found_as_the_definition_finds_it(
            inner in "[abkK-]{1,4}", text in "[aAbBkK-]{0,12}", ignore_case: bool
        ) {
            let pattern = format!("*{inner}*");
            let expected = if ignore_case {
                text.to_ascii_lowercase().contains(&inner.to_ascii_lowercase())
            } else {
                text.contains(&inner)
            };
            proptest::prop_assert_eq!(matches(&pattern, &text, ignore_case), expected, "{} ~ {}", pattern, text);
        }
    }

    #[test]
    fn hostile_pattern_finishes() {
        let pattern = "*a".repeat(2000);
        let text = "a".repeat(3000) + "b";
        assert!(!matches(&pattern, &text, false));
    }
}
