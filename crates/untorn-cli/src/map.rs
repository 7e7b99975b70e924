//! `untorn map`: the file as a grid of pages, drawn as SVG or PNG.
//!
//! [`layout`] turns the pages, the check report and each page's bucket into a [`Scene`]
//! of rectangles, lines and text; [`svg`] writes the scene as an SVG document and
//! [`png`] rasterises the same scene (no SVG parser: both draw one model, so the two
//! pictures agree; text in the PNG uses an 8×8 bitmap font).
//!
//! - One cell per page, `columns` per row, with page numbers on the left (the first page
//!   of a row) and column offsets on top.
//! - Reachable pages are coloured by their bucket (branch pages darker, overflow pages
//!   lighter) or by kind; free, leaked and corrupt pages by their state.
//! - Pages named by a finding get a black outline; every page on a reference cycle a
//!   magenta one, and magenta arrows follow the cycle's references.
//! - `range` draws only some pages (a zoom): rows start at its first page.
//!
//! Why this file is long: the layout and the two renderers (SVG text, PNG raster) share
//! one private `Scene` type; about 150 of its lines are the tests that render a scene and
//! read its pixels.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Range;

use untorn::unstable::report::{FindingKind, PageInfo, PageKind, PageState, Report};

use crate::args::ColorBy;

/// An RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// Mixed with `other`: `t` = 0 is self, 1 is other.
    fn mix(self, other: Rgb, t: f32) -> Rgb {
        let m = |a: u8, b: u8| (f32::from(a) + (f32::from(b) - f32::from(a)) * t).round() as u8;
        Rgb(m(self.0, other.0), m(self.1, other.1), m(self.2, other.2))
    }
}

const WHITE: Rgb = Rgb(255, 255, 255);
const BLACK: Rgb = Rgb(0, 0, 0);
const TEXT: Rgb = Rgb(34, 34, 34);
/// Outline and arrows of a reference cycle.
pub const CYCLE: Rgb = Rgb(255, 0, 255);

/// Fill colours of page kinds and states.
pub fn kind_color(name: &str) -> Rgb {
    match name {
        "meta" => Rgb(0x6a, 0x3d, 0x9a),
        "branch" => Rgb(0x1f, 0x78, 0xb4),
        "leaf" => Rgb(0x33, 0xa0, 0x2c),
        "overflow" => Rgb(0xb2, 0xdf, 0x8a),
        "freelist" => Rgb(0xff, 0x7f, 0x00),
        "free" => Rgb(0xdd, 0xdd, 0xdd),
        "leaked" => Rgb(0xfd, 0xbf, 0x6f),
        "corrupt" => Rgb(0xe3, 0x1a, 0x1c),
        _ => Rgb(0x99, 0x99, 0x99),
    }
}

/// Bucket colours (distinct from the state colours), in legend order; buckets past the
/// palette share [`OTHER_BUCKETS`].
pub const BUCKET_PALETTE: &[Rgb] = &[
    Rgb(0x1f, 0x77, 0xb4),
    Rgb(0x2c, 0xa0, 0x2c),
    Rgb(0x94, 0x67, 0xbd),
    Rgb(0x8c, 0x56, 0x4b),
    Rgb(0x17, 0xbe, 0xcf),
    Rgb(0xbc, 0xbd, 0x22),
    Rgb(0x00, 0x5f, 0x73),
    Rgb(0x7f, 0x7f, 0xff),
    Rgb(0x6b, 0x8e, 0x23),
    Rgb(0xa0, 0x52, 0x2d),
];
/// The colour of buckets past the palette.
pub const OTHER_BUCKETS: Rgb = Rgb(0x70, 0x80, 0x90);
/// The root tree (the catalog of top-level buckets).
pub const ROOT_TREE: Rgb = Rgb(0x44, 0x44, 0x44);

/// Which bucket each reachable page belongs to.
#[derive(Debug, Default, Clone)]
pub struct Attribution {
    /// Bucket paths (`a/b`); index 0 is the root tree.
    pub names: Vec<String>,
    /// Page id → index into `names`.
    pub page_bucket: BTreeMap<u64, usize>,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// Cells per row; `None`: about as many rows as columns.
    pub columns: Option<u32>,
    /// The pages to draw.
    pub range: Range<u64>,
    pub color_by: ColorBy,
    pub title: String,
}

/// A drawing primitive.
#[derive(Debug, Clone)]
pub enum Shape {
    /// A filled rectangle, optionally outlined (inside its bounds).
    Rect {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        fill: Option<Rgb>,
        stroke: Option<(Rgb, u32)>,
        /// A tooltip (SVG only).
        tip: Option<String>,
    },
    /// A line; with `arrow`, an arrowhead at its end.
    Line {
        from: (u32, u32),
        to: (u32, u32),
        color: Rgb,
        width: u32,
        arrow: bool,
    },
    /// Text with its top-left corner at `x`, `y` (8 px per character, 8 px high).
    Text { x: u32, y: u32, text: String },
}

/// A picture: its size and shapes, drawn in order.
#[derive(Debug, Clone)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub shapes: Vec<Shape>,
    pub title: String,
    /// Where each drawn page's cell is: page id → (x, y, size).
    pub cells: BTreeMap<u64, (u32, u32, u32)>,
}

const CHAR_W: u32 = 8;
const LINE_H: u32 = 12;
const MARGIN: u32 = 6;

/// Pages on each reference cycle: the path from the first occurrence of the repeated
/// page to where it is referenced again (`[2861, 1538, 2861]`).
pub fn cycles(report: &Report) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    for f in &report.findings {
        let (FindingKind::Cycle, Some(page)) = (f.kind, f.page) else {
            continue;
        };
        match f.path.iter().position(|&p| p == page) {
            Some(start) => out.push(f.path.iter().skip(start).copied().collect()),
            None => out.push(vec![page]),
        }
    }
    out
}

fn u(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The cell colour of a page.
fn fill(info: &PageInfo, attribution: &Attribution, by: ColorBy, legend: &[usize]) -> Rgb {
    if info.state != PageState::Reachable {
        return kind_color(info.state.as_str());
    }
    let kind = info.kind.as_str();
    if by == ColorBy::Kind {
        return kind_color(kind);
    }
    let base = match attribution.page_bucket.get(&info.id) {
        None => return kind_color(kind),
        Some(0) => ROOT_TREE,
        Some(b) => legend
            .iter()
            .position(|x| x == b)
            .and_then(|i| BUCKET_PALETTE.get(i).copied())
            .unwrap_or(OTHER_BUCKETS),
    };
    match info.kind {
        PageKind::Branch => base.mix(BLACK, 0.45),
        PageKind::Overflow => base.mix(WHITE, 0.5),
        PageKind::Leaf => base,
        _ => kind_color(kind),
    }
}

/// Lays the map out.
pub fn layout(
    infos: &[PageInfo],
    report: &Report,
    attribution: &Attribution,
    opts: &MapOptions,
) -> Scene {
    let shown: Vec<&PageInfo> = infos
        .iter()
        .filter(|i| opts.range.contains(&i.id))
        .collect();
    let first = shown.first().map_or(opts.range.start, |i| i.id);
    let n = shown.last().map_or(0, |l| l.id + 1 - first);
    // About square: columns a multiple of 8 near the square root of the page count.
    let cols = u64::from(
        opts.columns
            .unwrap_or_else(|| {
                let side = (n as f64).sqrt().ceil() as u32;
                side.div_ceil(8).max(1) * 8
            })
            .clamp(8, 4096),
    );
    let rows = n.div_ceil(cols).max(1);
    // Cells of 2..=12 px, the grid about 1000 px wide.
    let cell = u32::try_from((1000 / cols).clamp(2, 12)).unwrap_or(2);
    let label_chars = u(format!("{}", first + rows * cols).len()).max(4);
    let left = MARGIN + label_chars * CHAR_W + MARGIN;
    let top = MARGIN + LINE_H + MARGIN + LINE_H;
    let grid_w = u32::try_from(cols).unwrap_or(1) * cell;
    let grid_h = u32::try_from(rows).unwrap_or(1).saturating_mul(cell);

    // Buckets in the legend: the ones with the most pages drawn.
    let mut counts: BTreeMap<usize, u64> = BTreeMap::new();
    for i in &shown {
        if let Some(&b) = attribution.page_bucket.get(&i.id) {
            if b != 0 {
                *counts.entry(b).or_default() += 1;
            }
        }
    }
    let mut by_count: Vec<(usize, u64)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let legend_buckets: Vec<usize> = by_count
        .iter()
        .take(BUCKET_PALETTE.len())
        .map(|(b, _)| *b)
        .collect();

    let mut shapes = Vec::new();
    let mut cells = BTreeMap::new();
    let title = format!(
        "{}: pages {}..{} of {}, {} finding{}",
        opts.title,
        first,
        first + n,
        infos.len(),
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" }
    );
    shapes.push(Shape::Text {
        x: MARGIN,
        y: MARGIN,
        text: title.clone(),
    });
    // Axis: column offsets on top, every 8 columns (or more when cells are small).
    let col_step = {
        let min_cols = u64::from((5 * CHAR_W).div_ceil(cell));
        let mut s = 8u64;
        while s < min_cols {
            s *= 2;
        }
        s
    };
    let mut c = 0;
    while c < cols {
        let x = left + u32::try_from(c).unwrap_or(0) * cell;
        shapes.push(Shape::Text {
            x,
            y: MARGIN + LINE_H + MARGIN,
            text: format!("+{c}"),
        });
        shapes.push(Shape::Line {
            from: (x, top - 3),
            to: (x, top - 1),
            color: TEXT,
            width: 1,
            arrow: false,
        });
        c += col_step;
    }
    // Page numbers of rows on the left, spaced so that labels do not overlap.
    let row_step = u64::from(LINE_H.div_ceil(cell)).max(1);
    let mut r = 0;
    while r < rows {
        let y = top + u32::try_from(r).unwrap_or(0) * cell;
        let label = format!("{}", first + r * cols);
        shapes.push(Shape::Text {
            x: left - MARGIN - u(label.len()) * CHAR_W,
            y,
            text: label,
        });
        r += row_step;
    }
    // Cells: runs of one colour in one row become one rectangle.
    let mut i = 0usize;
    while let Some(info) = shown.get(i) {
        let color = fill(info, attribution, opts.color_by, &legend_buckets);
        let row = (info.id - first) / cols;
        let mut j = i + 1;
        while let Some(n) = shown.get(j) {
            if (n.id - first) / cols != row
                || n.id != info.id + (j - i) as u64
                || fill(n, attribution, opts.color_by, &legend_buckets) != color
            {
                break;
            }
            j += 1;
        }
        for k in i..j {
            if let Some(p) = shown.get(k) {
                let (x, y) = cell_at(p.id, first, cols, cell, left, top);
                cells.insert(p.id, (x, y, cell));
            }
        }
        let (x, y) = cell_at(info.id, first, cols, cell, left, top);
        let last = shown.get(j - 1).map_or(info.id, |l| l.id);
        let what = match (info.state, attribution.page_bucket.get(&info.id)) {
            (PageState::Reachable, Some(b)) => format!(
                "{} of {}",
                info.kind.as_str(),
                attribution.names.get(*b).map_or("?", String::as_str)
            ),
            (PageState::Reachable, None) => info.kind.as_str().to_owned(),
            (s, _) => s.as_str().to_owned(),
        };
        shapes.push(Shape::Rect {
            x,
            y,
            w: u(j - i) * cell,
            h: cell,
            fill: Some(color),
            stroke: None,
            tip: Some(if last == info.id {
                format!("page {}: {what}", info.id)
            } else {
                format!("pages {}..={last}: {what}", info.id)
            }),
        });
        i = j;
    }
    // Outlines: findings, then cycles on top.
    let stroke = (cell / 4).max(1);
    let finding_pages: BTreeSet<u64> = report.findings.iter().filter_map(|f| f.page).collect();
    for p in finding_pages {
        if let Some(&(x, y, s)) = cells.get(&p) {
            let kinds: Vec<&str> = report
                .findings
                .iter()
                .filter(|f| f.page == Some(p))
                .map(|f| f.kind.as_str())
                .collect();
            shapes.push(Shape::Rect {
                x,
                y,
                w: s,
                h: s,
                fill: None,
                stroke: Some((BLACK, stroke)),
                tip: Some(format!("page {p}: {}", kinds.join(", "))),
            });
        }
    }
    let cycles = cycles(report);
    for cycle in &cycles {
        for p in cycle {
            if let Some(&(x, y, s)) = cells.get(p) {
                shapes.push(Shape::Rect {
                    x,
                    y,
                    w: s,
                    h: s,
                    fill: None,
                    stroke: Some((CYCLE, stroke + 1)),
                    tip: Some(format!("page {p} on a reference cycle")),
                });
            }
        }
        for pair in cycle.windows(2) {
            let (Some(&a), Some(&b)) = (pair.first(), pair.get(1)) else {
                continue;
            };
            let (Some(&(ax, ay, s)), Some(&(bx, by, _))) = (cells.get(&a), cells.get(&b)) else {
                continue;
            };
            if a == b {
                continue; // a page referencing itself: its outline says it
            }
            // From the edge of one cell to the edge of the next, shifted to the right of
            // the direction of travel so that A -> B and B -> A are two visible arrows.
            let (fx, fy) = (f64::from(ax + s / 2), f64::from(ay + s / 2));
            let (tx, ty) = (f64::from(bx + s / 2), f64::from(by + s / 2));
            let len = ((tx - fx).powi(2) + (ty - fy).powi(2)).sqrt().max(1.0);
            let (ux, uy) = ((tx - fx) / len, (ty - fy) / len);
            let inset = f64::from(s) / 2.0;
            let shift = 3.0;
            let at = |x: f64, y: f64| {
                (
                    (x - uy * shift).round().max(0.0) as u32,
                    (y + ux * shift).round().max(0.0) as u32,
                )
            };
            shapes.push(Shape::Line {
                from: at(fx + ux * inset, fy + uy * inset),
                to: at(tx - ux * inset, ty - uy * inset),
                color: CYCLE,
                width: 2,
                arrow: true,
            });
        }
    }
    // Legend.
    let mut entries: Vec<(Rgb, String, bool)> = Vec::new();
    if opts.color_by == ColorBy::Bucket {
        entries.push((ROOT_TREE, "root (bucket catalog)".into(), false));
        for (i, b) in legend_buckets.iter().enumerate() {
            let name = attribution.names.get(*b).cloned().unwrap_or_default();
            if let Some(&c) = BUCKET_PALETTE.get(i) {
                entries.push((c, format!("bucket {name}"), false));
            }
        }
        if by_count.len() > legend_buckets.len() {
            entries.push((OTHER_BUCKETS, "other buckets".into(), false));
        }
        entries.push((kind_color("meta"), "meta".into(), false));
        entries.push((kind_color("freelist"), "freelist".into(), false));
    } else {
        for k in ["meta", "branch", "leaf", "overflow", "freelist"] {
            entries.push((kind_color(k), k.into(), false));
        }
    }
    for s in ["free", "leaked", "corrupt"] {
        entries.push((kind_color(s), s.into(), false));
    }
    entries.push((BLACK, "page with a finding".into(), true));
    entries.push((CYCLE, "reference cycle (arrows follow it)".into(), true));
    let legend_top = top + grid_h + 2 * MARGIN;
    let entry_w = 8 + 8 + 34 * CHAR_W;
    let per_row = ((grid_w + left).max(2 * entry_w) / entry_w).max(1);
    for (k, (color, label, outline)) in entries.iter().enumerate() {
        let k = u(k);
        let x = MARGIN + (k % per_row) * entry_w;
        let y = legend_top + (k / per_row) * (LINE_H + 4);
        shapes.push(Shape::Rect {
            x,
            y,
            w: 10,
            h: 10,
            fill: if *outline { None } else { Some(*color) },
            stroke: outline.then_some((*color, 2)),
            tip: None,
        });
        shapes.push(Shape::Text {
            x: x + 16,
            y: y + 1,
            text: label.chars().take(34).collect(),
        });
    }
    let legend_rows = u(entries.len()).div_ceil(per_row);
    let width = (left + grid_w + MARGIN)
        .max(MARGIN + per_row * entry_w)
        .max(MARGIN + u(title.len()) * CHAR_W + MARGIN);
    let height = legend_top + legend_rows * (LINE_H + 4) + MARGIN;
    Scene {
        width,
        height,
        shapes,
        title,
        cells,
    }
}

fn cell_at(id: u64, first: u64, cols: u64, cell: u32, left: u32, top: u32) -> (u32, u32) {
    let off = id - first;
    let x = left + u32::try_from(off % cols).unwrap_or(0) * cell;
    let y = top + u32::try_from(off / cols).unwrap_or(0).saturating_mul(cell);
    (x, y)
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

/// The scene as an SVG document.
pub fn svg(scene: &Scene) -> String {
    let (w, h) = (scene.width, scene.height);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="monospace" font-size="11">
<title>{}</title>
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{}"/></marker></defs>
<rect x="0" y="0" width="{w}" height="{h}" fill="{}"/>"#,
        escape(&scene.title),
        CYCLE.hex(),
        WHITE.hex()
    );
    for shape in &scene.shapes {
        match shape {
            Shape::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
                tip,
            } => {
                let fill = fill.map_or("none".to_owned(), Rgb::hex);
                // SVG strokes straddle the edge; keep them inside the cell like the PNG.
                let (sx, sy, sw, sh, st) = match stroke {
                    Some((c, width)) => {
                        let half = *width as f32 / 2.0;
                        (
                            *x as f32 + half,
                            *y as f32 + half,
                            (*w as f32 - *width as f32).max(0.0),
                            (*h as f32 - *width as f32).max(0.0),
                            format!(r#" stroke="{}" stroke-width="{width}""#, c.hex()),
                        )
                    }
                    None => (*x as f32, *y as f32, *w as f32, *h as f32, String::new()),
                };
                let _ = write!(
                    s,
                    r#"<rect x="{sx}" y="{sy}" width="{sw}" height="{sh}" fill="{fill}"{st}>"#
                );
                if let Some(t) = tip {
                    let _ = write!(s, "<title>{}</title>", escape(t));
                }
                s.push_str("</rect>\n");
            }
            Shape::Line {
                from,
                to,
                color,
                width,
                arrow,
            } => {
                let _ = writeln!(
                    s,
                    r#"<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{width}"{}/>"#,
                    if *arrow { "cycle-arrow" } else { "tick" },
                    from.0,
                    from.1,
                    to.0,
                    to.1,
                    color.hex(),
                    if *arrow {
                        r#" marker-end="url(#arrow)""#
                    } else {
                        ""
                    }
                );
            }
            Shape::Text { x, y, text } => {
                let _ = writeln!(
                    s,
                    r#"<text x="{x}" y="{}" fill="{}">{}</text>"#,
                    y + 9,
                    TEXT.hex(),
                    escape(text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// An RGB pixel buffer.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Canvas {
        let n = width as usize * height as usize * 3;
        Canvas {
            width,
            height,
            pixels: vec![255; n],
        }
    }

    /// The colour at `x`, `y` (white outside).
    #[cfg(test)]
    pub fn get(&self, x: u32, y: u32) -> Rgb {
        if x >= self.width || y >= self.height {
            return WHITE;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        match self.pixels.get(i..i + 3) {
            Some([r, g, b]) => Rgb(*r, *g, *b),
            _ => WHITE,
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        if let Some(p) = self.pixels.get_mut(i..i + 3) {
            p.copy_from_slice(&[c.0, c.1, c.2]);
        }
    }

    fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, c: Rgb) {
        for yy in y..y.saturating_add(h).min(self.height) {
            for xx in x..x.saturating_add(w).min(self.width) {
                self.set(i64::from(xx), i64::from(yy), c);
            }
        }
    }

    fn outline(&mut self, x: u32, y: u32, w: u32, h: u32, c: Rgb, t: u32) {
        let t = t.min(w).min(h);
        self.fill(x, y, w, t, c);
        self.fill(x, (y + h).saturating_sub(t), w, t, c);
        self.fill(x, y, t, h, c);
        self.fill((x + w).saturating_sub(t), y, t, h, c);
    }

    fn line(&mut self, from: (u32, u32), to: (u32, u32), c: Rgb, width: u32) {
        let (x0, y0) = (f64::from(from.0), f64::from(from.1));
        let (x1, y1) = (f64::from(to.0), f64::from(to.1));
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as i64;
        let r = i64::from(width / 2);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = (x0 + (x1 - x0) * t).round() as i64;
            let y = (y0 + (y1 - y0) * t).round() as i64;
            for dy in -r..=r {
                for dx in -r..=r {
                    self.set(x + dx, y + dy, c);
                }
            }
        }
    }

    /// A filled arrowhead at `to`, pointing away from `from`.
    fn arrowhead(&mut self, from: (u32, u32), to: (u32, u32), c: Rgb, size: f64) {
        let (fx, fy) = (f64::from(from.0), f64::from(from.1));
        let (tx, ty) = (f64::from(to.0), f64::from(to.1));
        let len = ((tx - fx).powi(2) + (ty - fy).powi(2)).sqrt();
        if len < 1.0 {
            return;
        }
        let (ux, uy) = ((tx - fx) / len, (ty - fy) / len);
        let base = (tx - ux * size, ty - uy * size);
        let a = (base.0 - uy * size / 2.0, base.1 + ux * size / 2.0);
        let b = (base.0 + uy * size / 2.0, base.1 - ux * size / 2.0);
        let tri = [(tx, ty), a, b];
        let min_x = tri.iter().map(|p| p.0).fold(f64::MAX, f64::min).floor() as i64;
        let max_x = tri.iter().map(|p| p.0).fold(f64::MIN, f64::max).ceil() as i64;
        let min_y = tri.iter().map(|p| p.1).fold(f64::MAX, f64::min).floor() as i64;
        let max_y = tri.iter().map(|p| p.1).fold(f64::MIN, f64::max).ceil() as i64;
        let side = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
            (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0)
        };
        for y in min_y..=max_y {
            for x in min_x..=max_x {
                let p = (x as f64 + 0.5, y as f64 + 0.5);
                let d = [
                    side(tri[0], tri[1], p),
                    side(tri[1], tri[2], p),
                    side(tri[2], tri[0], p),
                ];
                let neg = d.iter().any(|v| *v < 0.0);
                let pos = d.iter().any(|v| *v > 0.0);
                if !(neg && pos) {
                    self.set(x, y, c);
                }
            }
        }
    }

    fn text(&mut self, x: u32, y: u32, text: &str, c: Rgb) {
        use font8x8::UnicodeFonts;
        for (n, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            let gx = i64::from(x) + n as i64 * i64::from(CHAR_W);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.set(gx + col, i64::from(y) + row as i64, c);
                    }
                }
            }
        }
    }
}

/// Draws the scene into pixels.
pub fn rasterise(scene: &Scene) -> Canvas {
    let mut cv = Canvas::new(scene.width, scene.height);
    for shape in &scene.shapes {
        match shape {
            Shape::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
                ..
            } => {
                if let Some(c) = fill {
                    cv.fill(*x, *y, *w, *h, *c);
                }
                if let Some((c, t)) = stroke {
                    cv.outline(*x, *y, *w, *h, *c, *t);
                }
            }
            Shape::Line {
                from,
                to,
                color,
                width,
                arrow,
            } => {
                cv.line(*from, *to, *color, *width);
                if *arrow {
                    cv.arrowhead(*from, *to, *color, 9.0);
                }
            }
            Shape::Text { x, y, text } => cv.text(*x, *y, text, TEXT),
        }
    }
    cv
}

/// The scene as a PNG file.
pub fn png(scene: &Scene) -> anyhow::Result<Vec<u8>> {
    let cv = rasterise(scene);
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, cv.width, cv.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header()?;
        w.write_image_data(&cv.pixels)?;
        w.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use untorn::unstable::report::Finding;

    fn info(id: u64, kind: PageKind, state: PageState) -> PageInfo {
        PageInfo {
            id,
            kind,
            items: 1,
            overflow: 0,
            state,
        }
    }

    /// 40 pages: metas, a root leaf, two buckets' branches and leaves, a cycle 20 -> 30
    /// -> 20, a corrupt page and free pages.
    fn sample() -> (Vec<PageInfo>, Report, Attribution) {
        let mut infos = vec![
            info(0, PageKind::Meta, PageState::Reachable),
            info(1, PageKind::Meta, PageState::Reachable),
            info(2, PageKind::Leaf, PageState::Reachable),
        ];
        let mut attribution = Attribution {
            names: vec!["(root)".into(), "alpha".into(), "beta".into()],
            page_bucket: BTreeMap::new(),
        };
        attribution.page_bucket.insert(2, 0);
        for id in 3..40 {
            let (kind, state) = match id {
                35 => (PageKind::Unknown, PageState::Corrupt),
                36..=39 => (PageKind::Free, PageState::Free),
                10 | 20 | 30 => (PageKind::Branch, PageState::Reachable),
                _ => (PageKind::Leaf, PageState::Reachable),
            };
            infos.push(info(id, kind, state));
            if state == PageState::Reachable {
                attribution
                    .page_bucket
                    .insert(id, if id < 20 { 1 } else { 2 });
            }
        }
        let mut report = Report::default();
        report.findings.push(Finding {
            kind: FindingKind::Cycle,
            page: Some(20),
            path: vec![3, 20, 30, 20],
            message: "cycle 20 -> 30 -> 20".into(),
            cause: None,
        });
        report.findings.push(Finding {
            kind: FindingKind::Checksum,
            page: Some(35),
            path: vec![],
            message: "bad checksum".into(),
            cause: None,
        });
        (infos, report, attribution)
    }

    fn opts(range: Range<u64>, by: ColorBy) -> MapOptions {
        MapOptions {
            columns: Some(8),
            range,
            color_by: by,
            title: "t".into(),
        }
    }

    #[test]
    fn cells_have_their_bucket_colours_and_the_cycle_its_arrows() {
        let (infos, report, attr) = sample();
        let scene = layout(&infos, &report, &attr, &opts(0..u64::MAX, ColorBy::Bucket));
        let cv = rasterise(&scene);
        let centre = |p: u64| {
            let (x, y, s) = scene.cells[&p];
            cv.get(x + s / 2, y + s / 2)
        };
        // The legend lists the buckets by page count: alpha (16 leaves) first.
        assert_eq!(centre(5), BUCKET_PALETTE[0], "alpha's leaf");
        assert_eq!(centre(25), BUCKET_PALETTE[1], "beta's leaf");
        assert_eq!(centre(2), ROOT_TREE);
        assert_eq!(centre(0), kind_color("meta"));
        assert_eq!(centre(37), kind_color("free"));
        // A branch is its bucket's colour, darker.
        assert_eq!(centre(10), BUCKET_PALETTE[0].mix(BLACK, 0.45));
        // Pages on the cycle are outlined in magenta.
        let (x, y, _) = scene.cells[&30];
        assert_eq!(cv.get(x, y), CYCLE, "cycle outline");
        // The corrupt page with a finding: red inside a black outline.
        let (x, y, s) = scene.cells[&35];
        assert_eq!(cv.get(x, y), BLACK);
        assert_eq!(cv.get(x + s / 2, y + s / 2), kind_color("corrupt"));
        // Two arrows follow the cycle 20 -> 30 -> 20, and the pixel halfway between
        // the two cells' centres (inside beta's leaves, away from any outline) is on them.
        let arrows = scene
            .shapes
            .iter()
            .filter(|sh| matches!(sh, Shape::Line { arrow: true, .. }))
            .count();
        assert_eq!(arrows, 2, "20 -> 30 and 30 -> 20");
        let (x20, y20, s) = scene.cells[&20];
        let (x30, y30, _) = scene.cells[&30];
        let mid = ((x20 + x30 + s) / 2, (y20 + y30 + s) / 2);
        assert_eq!(cv.get(mid.0, mid.1), CYCLE);
        // Without the cycle finding there is no arrow, and the same pixel is a leaf's.
        let mut clean = report.clone();
        clean.findings.retain(|f| f.kind != FindingKind::Cycle);
        let plain = rasterise(&layout(
            &infos,
            &clean,
            &attr,
            &opts(0..u64::MAX, ColorBy::Bucket),
        ));
        assert_eq!(plain.get(mid.0, mid.1), BUCKET_PALETTE[1]);
    }

    #[test]
    fn kind_colouring_and_zoom() {
        let (infos, report, attr) = sample();
        let scene = layout(&infos, &report, &attr, &opts(16..24, ColorBy::Kind));
        assert_eq!(
            scene.cells.keys().copied().collect::<Vec<_>>(),
            (16..24).collect::<Vec<_>>()
        );
        let cv = rasterise(&scene);
        let (x, y, s) = scene.cells[&17];
        assert_eq!(cv.get(x + s / 2, y + s / 2), kind_color("leaf"));
        // Page 20's cycle partner 30 is outside the zoom: no arrow is drawn.
        assert!(!scene
            .shapes
            .iter()
            .any(|sh| matches!(sh, Shape::Line { arrow: true, .. })));
        // The row label says where the zoom starts.
        assert!(scene
            .shapes
            .iter()
            .any(|sh| matches!(sh, Shape::Text { text, .. } if text == "16")));
    }

    #[test]
    fn png_encodes_the_same_pixels() {
        let (infos, report, attr) = sample();
        let scene = layout(&infos, &report, &attr, &opts(0..u64::MAX, ColorBy::Bucket));
        let bytes = png(&scene).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        assert_eq!((frame.width, frame.height), (scene.width, scene.height));
        assert_eq!(&buf[..frame.buffer_size()], &rasterise(&scene).pixels[..]);
    }
}
