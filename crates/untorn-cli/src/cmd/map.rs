//! `untorn map`: check the file, attribute every reachable page to its bucket, and draw
//! it (`crate::map`) as SVG and/or PNG.

use std::io::Write;
use std::ops::Range;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use untorn::unstable::check::{check_with_pages, describe_page, CheckOptions};
use untorn::unstable::report::{PageDescription, PageElement};

use super::source::{with_source, View};
use crate::args::{ColorBy, MapArgs};
use crate::backend::Format;
use crate::encoding::display;
use crate::map::{self, Attribution, MapOptions};
use crate::output;

/// `A..B`, `A..` or `..B` (B exclusive).
fn parse_range(s: &str) -> Result<Range<u64>> {
    let Some((a, b)) = s.split_once("..") else {
        bail!("--pages {s:?}: expected A..B (B exclusive), A.. or ..B");
    };
    let num = |t: &str, default: u64| -> Result<u64> {
        if t.is_empty() {
            Ok(default)
        } else {
            t.parse()
                .with_context(|| format!("--pages {s:?}: {t:?} is not a page number"))
        }
    };
    let r = num(a, 0)?..num(b, u64::MAX)?;
    if r.is_empty() {
        bail!("--pages {s:?} is empty");
    }
    Ok(r)
}

/// Which bucket each reachable page belongs to: a walk from the root over the decoded
/// pages (branch children, bucket roots, overflow extents), with a visited set and a
/// bound of one visit per page id below `pages`.
fn attribute(root: u64, pages: u64, describe: impl Fn(u64) -> PageDescription) -> Attribution {
    let mut a = Attribution {
        names: vec!["(root)".into()],
        page_bucket: Default::default(),
    };
    let mut stack = vec![(root, 0usize)];
    while let Some((page, bucket)) = stack.pop() {
        if page < 2 || page >= pages || a.page_bucket.contains_key(&page) {
            continue;
        }
        a.page_bucket.insert(page, bucket);
        let d = describe(page);
        // The page's own continuation pages (a multi-page node or bbolt overflow).
        let extra = d.header.as_ref().map_or(0, |h| match h.extent_pages {
            Some(e) => u64::from(e).saturating_sub(1),
            None => u64::from(h.overflow.unwrap_or(0)),
        });
        for p in page + 1..=page.saturating_add(extra).min(pages.saturating_sub(1)) {
            a.page_bucket.entry(p).or_insert(bucket);
        }
        for e in &d.elements {
            match e {
                PageElement::Child { page, .. } => stack.push((*page, bucket)),
                PageElement::Overflow {
                    page, extent_pages, ..
                } => {
                    for p in *page..page.saturating_add(u64::from(*extent_pages).max(1)) {
                        if p < pages {
                            a.page_bucket.entry(p).or_insert(bucket);
                        }
                    }
                }
                PageElement::Bucket { key, root, .. } if *root != 0 => {
                    let parent = a.names.get(bucket).cloned().unwrap_or_default();
                    let name = if bucket == 0 {
                        display(key)
                    } else {
                        format!("{parent}/{}", display(key))
                    };
                    a.names.push(name);
                    stack.push((*root, a.names.len() - 1));
                }
                _ => {}
            }
        }
    }
    a
}

pub fn run(a: MapArgs) -> Result<ExitCode> {
    let range = match &a.pages {
        Some(s) => parse_range(s)?,
        None => 0..u64::MAX,
    };
    let by_bucket = a.color_by == ColorBy::Bucket;
    let (format, report, infos, attribution) = with_source(&a.common.file, |view| match view {
        View::Native(src, _) => {
            let (report, infos) = check_with_pages(src, CheckOptions::default())?;
            let attribution = if by_bucket {
                attribute(src.meta().root.page_id.0, infos.len() as u64, |p| {
                    describe_page(src, p)
                })
            } else {
                Attribution::default()
            };
            Ok((Format::Native, report, infos, attribution))
        }
        View::Bbolt(f) => {
            let report = untorn_bbolt::check_file(f, untorn_bbolt::CheckOptions::default());
            let infos = untorn_bbolt::pages(f);
            let attribution = if by_bucket {
                attribute(f.meta().root, infos.len() as u64, |p| {
                    untorn_bbolt::describe_page(f, p)
                })
            } else {
                Attribution::default()
            };
            Ok((Format::Bbolt, report, infos, attribution))
        }
    })?;
    let scene = map::layout(
        &infos,
        &report,
        &attribution,
        &MapOptions {
            columns: a.columns,
            range,
            color_by: a.color_by,
            title: a.common.file.display().to_string(),
        },
    );
    if scene.cells.is_empty() {
        bail!(
            "--pages {}: the file has pages 0..{}",
            a.pages.as_deref().unwrap_or(""),
            infos.len()
        );
    }
    let mut written = Vec::new();
    if let Some(p) = &a.svg {
        std::fs::write(p, map::svg(&scene))
            .with_context(|| format!("cannot write {}", p.display()))?;
        written.push(p.display().to_string());
    }
    if let Some(p) = &a.png {
        std::fs::write(p, map::png(&scene)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        written.push(p.display().to_string());
    }
    let drawn = scene.cells.len();
    let findings = report.findings.len();
    let cycles = map::cycles(&report).len();
    let mut out = output::stdout();
    if a.common.json {
        output::json(
            &mut out,
            &json!({"format": format.name(), "svg": a.svg.as_ref().map(|p| p.display().to_string()),
                "png": a.png.as_ref().map(|p| p.display().to_string()),
                "pages": infos.len(), "pages_drawn": drawn, "findings": findings,
                "cycles": cycles, "buckets": attribution.names.len().saturating_sub(1),
                "width": scene.width, "height": scene.height}),
        )?;
    } else {
        writeln!(
            out,
            "wrote {} ({} × {} px: {} of {}, {})",
            written.join(" and "),
            scene.width,
            scene.height,
            output::count(drawn as u64, "page"),
            infos.len(),
            output::count(findings as u64, "finding"),
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges() {
        assert_eq!(parse_range("10..20").unwrap(), 10..20);
        assert_eq!(parse_range("10..").unwrap(), 10..u64::MAX);
        assert_eq!(parse_range("..5").unwrap(), 0..5);
        assert!(parse_range("5..5").is_err());
        assert!(parse_range("x..5").is_err());
        assert!(parse_range("7").is_err());
    }
}
