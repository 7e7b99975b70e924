//! The ratio chart as hand-written SVG: one row per phase, one horizontal bar per peer,
//! on a log scale centred on 1 (bars to the right: untorn faster or smaller).

use std::fmt::Write as _;

use crate::harness::Results;
use crate::report::{fmt_ratio, label, ratio};

const COLORS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f",
];
/// The axis spans 1/RANGE ..= RANGE; longer bars are clipped and marked.
const RANGE: f64 = 16.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn chart(r: &Results) -> String {
    let peers: Vec<&str> = r
        .engines
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "untorn")
        .collect();
    let bar_h = 9.0;
    let row_h = (peers.len().max(1) as f64) * bar_h + 8.0;
    let left = 200.0;
    // Room on both sides of the plot for the value labels of clipped bars.
    let pad = 80.0;
    let plot_w = 560.0;
    let top = 60.0;
    let width = left + pad + plot_w + pad;
    let rows = r.phases.len() as f64;
    let legend_h = 24.0;
    let height = top + rows * row_h + 40.0 + legend_h;
    let log_range = RANGE.log2();
    let x_of = |ratio: f64| -> f64 {
        let l = ratio.log2().clamp(-log_range, log_range);
        left + pad + plot_w / 2.0 + l / log_range * (plot_w / 2.0)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{:.0}" y="18" font-size="14" font-weight="bold">peer / untorn, median of same-repetition ratios ({} keys, {} reps)</text>"#,
        10.0,
        r.common.keys,
        r.suite.len()
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="34">bars right of 1: untorn faster (or smaller); left: the peer is. Log scale, clipped at {RANGE}x.</text>"#
    );
    // Grid and ticks.
    let bottom = top + rows * row_h;
    for tick in [1.0 / 16.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0] {
        let x = x_of(tick);
        let stroke = if tick == 1.0 { "#000000" } else { "#dddddd" };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{stroke}" stroke-width="1"/>"#
        );
        let text = if tick < 1.0 {
            format!("1/{:.0}", 1.0 / tick)
        } else {
            format!("{tick:.0}")
        };
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{text}</text>"#,
            bottom + 14.0
        );
    }
    for (row, phase) in r.phases.iter().enumerate() {
        let y0 = top + row as f64 * row_h;
        if row % 2 == 1 {
            let _ = writeln!(
                s,
                r##"<rect x="0" y="{y0:.1}" width="{left:.0}" height="{row_h:.1}" fill="#f4f4f4"/>"##
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y0 + row_h / 2.0 + 4.0,
            escape(&label(phase))
        );
        for (i, peer) in peers.iter().enumerate() {
            let Some(v) = ratio(r, peer, phase) else {
                continue;
            };
            let y = y0 + 4.0 + i as f64 * bar_h;
            let (x1, x2) = (x_of(1.0), x_of(v));
            let (x, w) = if x2 >= x1 {
                (x1, x2 - x1)
            } else {
                (x2, x1 - x2)
            };
            let color = COLORS[i % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{}: {} {}</title></rect>"#,
                w.max(0.5),
                bar_h - 1.5,
                escape(peer),
                escape(&label(phase)),
                fmt_ratio(v)
            );
            let clipped = !(1.0 / RANGE..=RANGE).contains(&v);
            let tx = if x2 >= x1 { x2 + 3.0 } else { x2 - 3.0 };
            let anchor = if x2 >= x1 { "start" } else { "end" };
            let _ = writeln!(
                s,
                r#"<text x="{tx:.1}" y="{:.1}" font-size="8" text-anchor="{anchor}">{}{}</text>"#,
                y + bar_h - 2.5,
                fmt_ratio(v),
                if clipped { " (clipped)" } else { "" }
            );
        }
    }
    // Legend.
    let ly = bottom + 30.0;
    let mut lx = left + pad;
    for (i, peer) in peers.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="10" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            ly - 9.0,
            lx + 16.0,
            ly,
            escape(peer)
        );
        lx += 30.0 + 7.0 * peer.len() as f64;
    }
    s.push_str("</svg>\n");
    s
}
