//! `untorn map`: the file as an SVG grid, one cell per page.
//!
//! Cells are coloured by state (free, leaked, corrupt) and, for reachable pages, by kind
//! (meta, branch, leaf, overflow, freelist). Pages named by a finding get a thick
//! outline; every page on a reference cycle (a `cycle` finding: the path from the
//! repeated page down to where it is referenced again) gets a magenta one. Adjacent cells of one colour in a row are drawn as one rectangle, so a
//! large file stays a manageable document.

use std::collections::BTreeSet;
use std::fmt::Write;

use untorn::unstable::report::{FindingKind, PageInfo, PageState, Report};

const CELL: u32 = 10;
const LEGEND_H: u32 = 60;

/// (class, fill colour, legend label), in legend order.
const CLASSES: &[(&str, &str, &str)] = &[
    ("meta", "#6a3d9a", "meta"),
    ("branch", "#1f78b4", "branch"),
    ("leaf", "#33a02c", "leaf"),
    ("overflow", "#b2df8a", "overflow / extent"),
    ("freelist", "#ff7f00", "freelist"),
    ("free", "#dddddd", "free"),
    ("leaked", "#fdbf6f", "leaked"),
    ("corrupt", "#e31a1c", "corrupt"),
    ("unknown", "#999999", "unknown"),
];

/// A page's cell class: its state when that is not "reachable", else its kind (the
/// report vocabulary's names, which are the CSS classes above).
fn class(i: &PageInfo) -> &'static str {
    match i.state {
        PageState::Reachable => i.kind.as_str(),
        other => other.as_str(),
    }
}

/// Escapes text for XML content and attributes.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Pages on a reference cycle, each with the cycle's description: for a `cycle`
/// finding, the path from the first occurrence of the finding's page to its end.
fn cycle_pages(report: &Report) -> Vec<(u64, String)> {
    let mut pages = Vec::new();
    for f in &report.findings {
        let (FindingKind::Cycle, Some(page)) = (f.kind, f.page) else {
            continue;
        };
        let Some(start) = f.path.iter().position(|&p| p == page) else {
            pages.push((page, f.message.clone()));
            continue;
        };
        for &p in f.path.iter().skip(start) {
            pages.push((p, f.message.clone()));
        }
    }
    pages.sort();
    pages.dedup_by_key(|(p, _)| *p);
    pages
}

/// Top-left corner of page `p`'s cell.
fn cell(p: u64, cols: u64, top: u32) -> (u32, u32) {
    let x = CELL + u32::try_from(p % cols).unwrap_or(0) * CELL;
    let y = top + u32::try_from(p / cols).unwrap_or(0) * CELL;
    (x, y)
}

/// Renders the map.
pub fn render(infos: &[PageInfo], report: &Report, columns: u32, title: &str) -> String {
    let finding_pages: BTreeSet<u64> = report.findings.iter().filter_map(|f| f.page).collect();
    let cols = u64::from(columns.max(1));
    let rows = (infos.len() as u64).div_ceil(cols).max(1);
    // Wide enough for the grid and for the legend's five columns of labels.
    let width = (columns * CELL + 2 * CELL).max(CELL + 5 * 130 + 30);
    let grid_h = u32::try_from(rows)
        .unwrap_or(u32::MAX / 2)
        .saturating_mul(CELL);
    let height = grid_h.saturating_add(LEGEND_H + 3 * CELL);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(
        s,
        "<title>{} — {} pages, {} findings</title>",
        escape(title),
        infos.len(),
        report.findings.len()
    );
    let _ = writeln!(s, "<style>");
    for (c, fill, _) in CLASSES {
        let _ = writeln!(s, ".{c}{{fill:{fill}}}");
    }
    let _ = writeln!(
        s,
        ".finding{{fill:none;stroke:#000;stroke-width:2}}\n.cycle{{fill:none;stroke:#ff00ff;stroke-width:3}}</style>"
    );
    let top = 2 * CELL;
    let _ = writeln!(
        s,
        r#"<text x="{CELL}" y="{}">{}</text>"#,
        CELL + 2,
        escape(title)
    );
    // Runs of one class in one row become one rectangle.
    let mut i = 0usize;
    while let Some(info) = infos.get(i) {
        let c = class(info);
        let row = info.id / cols;
        let mut j = i + 1;
        while let Some(n) = infos.get(j) {
            if n.id / cols != row || class(n) != c {
                break;
            }
            j += 1;
        }
        let x = CELL + u32::try_from(info.id % cols).unwrap_or(0) * CELL;
        let y = top + u32::try_from(row).unwrap_or(0) * CELL;
        let w = u32::try_from(j - i).unwrap_or(1) * CELL;
        let last = infos.get(j - 1).map_or(info.id, |l| l.id);
        let _ = writeln!(
            s,
            r#"<rect class="{c}" x="{x}" y="{y}" width="{w}" height="{CELL}"><title>pages {}..={last}: {c}</title></rect>"#,
            info.id
        );
        i = j;
    }
    for &p in &finding_pages {
        if p >= infos.len() as u64 {
            continue;
        }
        let (x, y) = cell(p, cols, top);
        let kinds: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.page == Some(p))
            .map(|f| f.kind.as_str())
            .collect();
        let _ = writeln!(
            s,
            r#"<rect class="finding" x="{x}" y="{y}" width="{CELL}" height="{CELL}"><title>page {p}: {}</title></rect>"#,
            escape(&kinds.join(", "))
        );
    }
    for (p, msg) in cycle_pages(report) {
        if p >= infos.len() as u64 {
            continue;
        }
        let (x, y) = cell(p, cols, top);
        let _ = writeln!(
            s,
            r#"<rect class="cycle" x="{x}" y="{y}" width="{CELL}" height="{CELL}"><title>page {p} on a cycle: {}</title></rect>"#,
            escape(&msg)
        );
    }
    // Legend.
    let ly = top + grid_h + CELL;
    for (n, (c, _, label)) in CLASSES.iter().enumerate() {
        let n = u32::try_from(n).unwrap_or(0);
        let x = CELL + (n % 5) * 130;
        let y = ly + (n / 5) * 18;
        let _ = writeln!(
            s,
            r#"<rect class="{c}" x="{x}" y="{y}" width="{CELL}" height="{CELL}"/><text x="{}" y="{}">{}</text>"#,
            x + 14,
            y + 9,
            escape(label)
        );
    }
    for (n, (c, label)) in [
        ("finding", "page with a finding"),
        ("cycle", "page on a cycle"),
    ]
    .into_iter()
    .enumerate()
    {
        let n = u32::try_from(CLASSES.len() + n).unwrap_or(0);
        let x = CELL + (n % 5) * 130;
        let y = ly + (n / 5) * 18;
        let _ = writeln!(
            s,
            r#"<rect class="{c}" x="{x}" y="{y}" width="{CELL}" height="{CELL}"/><text x="{}" y="{}">{label}</text>"#,
            x + 14,
            y + 9
        );
    }
    s.push_str("</svg>\n");
    s
}
