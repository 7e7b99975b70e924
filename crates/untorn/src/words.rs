//! Counted nouns: "1 key", "2 keys", "3 entries" — every message of the engine, the
//! format toolkits and the CLI says counts this way, never "key(s)".

/// `n` followed by `noun`, plural unless `n` is 1 (regular English plurals: a final
/// consonant + "y" becomes "ies", anything else takes "s").
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    format!("{n} {}", plural(noun))
}

/// The plural of `noun` (see [`count`]).
pub fn plural(noun: &str) -> String {
    let mut chars = noun.chars().rev();
    match (chars.next(), chars.next()) {
        (Some('y'), Some(c)) if !"aeiou".contains(c) => {
            format!("{}ies", &noun[..noun.len() - 1])
        }
        _ => format!("{noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_say_one_or_many() {
        assert_eq!(count(1, "key"), "1 key");
        assert_eq!(count(0, "key"), "0 keys");
        assert_eq!(count(2, "entry"), "2 entries");
        assert_eq!(count(3, "revision"), "3 revisions");
        assert_eq!(count(1, "entry"), "1 entry");
        assert_eq!(plural("day"), "days");
    }
}
