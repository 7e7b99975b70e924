use crate::common::*;

/// A small well-formedness check: tags balance, attributes are quoted, one root.
pub fn assert_well_formed(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        assert!(
            !rest[..start].contains('>'),
            "stray '>' before {:?}",
            &rest[start..start.min(rest.len()).saturating_add(40).min(rest.len())]
        );
        let after = &rest[start + 1..];
        let end = after.find('>').expect("unterminated tag");
        let tag = &after[..end];
        rest = &after[end + 1..];
        if tag.starts_with('?') {
            assert!(tag.ends_with('?'));
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body.split_whitespace().next().expect("tag name");
        assert_eq!(
            body.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        assert!(
            !body.contains('<') && !body.contains('&')
                || body.contains("&amp;")
                || body.contains("&lt;")
        );
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name.to_owned());
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
    assert_eq!(roots, 1);
}

#[test]
fn map_writes_well_formed_svg_with_legend_and_highlighted_findings() {
    let db = sample();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("map.svg");
    ok(&["map", db.p(), "--svg", out.to_str().unwrap()], 0);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert_well_formed(&svg);
    for label in [
        "meta",
        "bucket users",
        "bucket blobs",
        "root (bucket catalog)",
        "free",
        "leaked",
        "corrupt",
        "page with a finding",
    ] {
        assert!(svg.contains(label), "legend lacks {label}");
    }

    let leaf = pages_of(&db, "leaf")[0];
    flip(&db.path, leaf, 200);
    ok(&["map", db.p(), "--svg", out.to_str().unwrap()], 0);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert_well_formed(&svg);
    assert!(
        svg.contains(&format!("<title>page {leaf}: checksum</title>")),
        "{svg}"
    );
    // Drawn in the corrupt colour.
    assert!(
        svg.contains(&format!("<title>page {leaf}: corrupt</title>")),
        "{svg}"
    );
}

#[test]
fn well_formedness_check_rejects_broken_xml() {
    assert!(std::panic::catch_unwind(|| assert_well_formed("<svg><rect></svg>")).is_err());
    assert!(std::panic::catch_unwind(|| assert_well_formed("<a/><b/>")).is_err());
}
