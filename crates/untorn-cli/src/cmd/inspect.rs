//! `untorn stats`, `pages`, `page` and `map`: the file as pages.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{json, Value};
use untorn::check::{check_with_pages, page_infos, stats as walk_stats, CheckOptions, CheckSource};
use untorn::format::{
    decode_freelist, decode_header, peek_extent_pages, verify_page, LeafValue, Meta, NodeView,
    PageType, MAX_EXTENT_PAGES,
};

use super::source::with_source;
use crate::args::{FileArgs, MapArgs, PageArgs};
use crate::encoding::{display, encode, to_hex};
use crate::output;
use crate::svg;

#[derive(Debug, Serialize)]
struct JsonStats {
    source: &'static str,
    page_size: usize,
    txid: u64,
    high_water: u64,
    file_pages: u64,
    meta_pages: u64,
    branch_pages: u64,
    leaf_pages: u64,
    overflow_pages: u64,
    freelist_pages: u64,
    free_pages: u64,
    leaked_pages: u64,
    corrupt_pages: u64,
    tree_depth_max: u32,
    buckets: u64,
    keys: u64,
    key_bytes: u64,
    value_bytes: u64,
    fill_factor: f64,
    findings: u64,
}

pub fn stats(a: FileArgs) -> Result<ExitCode> {
    let s = with_source(&a.file, |src, origin| {
        let s = walk_stats(src)?;
        Ok(JsonStats {
            source: origin.name(),
            page_size: s.page_size,
            txid: s.txid,
            high_water: s.high_water,
            file_pages: s.file_pages,
            meta_pages: s.meta_pages,
            branch_pages: s.branch_pages,
            leaf_pages: s.leaf_pages,
            overflow_pages: s.overflow_pages,
            freelist_pages: s.freelist_pages,
            free_pages: s.free_pages,
            leaked_pages: s.leaked_pages,
            corrupt_pages: s.corrupt_pages,
            tree_depth_max: s.tree_depth_max,
            buckets: s.buckets,
            keys: s.keys,
            key_bytes: s.key_bytes,
            value_bytes: s.value_bytes,
            fill_factor: s.fill_factor(),
            findings: s.findings,
        })
    })?;
    let mut out = output::stdout();
    if a.json {
        output::json(&mut out, &s)?;
    } else {
        let pages = |n: u64| format!("{n} pages ({} KiB)", n * s.page_size as u64 / 1024);
        let rows: Vec<Vec<String>> = vec![
            vec!["page size".into(), format!("{} bytes", s.page_size)],
            vec!["txid".into(), s.txid.to_string()],
            vec!["high-water mark".into(), pages(s.high_water)],
            vec!["file".into(), pages(s.file_pages)],
            vec!["meta".into(), pages(s.meta_pages)],
            vec!["branch".into(), pages(s.branch_pages)],
            vec!["leaf".into(), pages(s.leaf_pages)],
            vec!["overflow".into(), pages(s.overflow_pages)],
            vec!["freelist".into(), pages(s.freelist_pages)],
            vec!["free".into(), pages(s.free_pages)],
            vec!["leaked".into(), pages(s.leaked_pages)],
            vec!["tree depth (max)".into(), s.tree_depth_max.to_string()],
            vec!["buckets".into(), s.buckets.to_string()],
            vec!["keys".into(), s.keys.to_string()],
            vec!["key bytes".into(), s.key_bytes.to_string()],
            vec!["value bytes".into(), s.value_bytes.to_string()],
            vec![
                "fill factor".into(),
                format!("{:.1}%", s.fill_factor * 100.0),
            ],
            vec![
                "findings".into(),
                format!("{} (run `untorn check` for details)", s.findings),
            ],
        ];
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn pages(a: FileArgs) -> Result<ExitCode> {
    let infos = with_source(&a.file, |src, _| Ok(page_infos(src)?))?;
    let mut out = output::stdout();
    if a.json {
        let v: Vec<Value> = infos
            .iter()
            .map(|i| {
                json!({"id": i.id, "type": i.kind.as_str(), "items": i.items,
                       "overflow": i.overflow, "state": i.state.as_str()})
            })
            .collect();
        output::json(&mut out, &v)?;
    } else {
        let mut rows = vec![vec![
            "ID".to_owned(),
            "TYPE".into(),
            "ITEMS".into(),
            "OVERFLOW".into(),
            "STATE".into(),
        ]];
        for i in &infos {
            rows.push(vec![
                i.id.to_string(),
                i.kind.as_str().into(),
                i.items.to_string(),
                i.overflow.to_string(),
                i.state.as_str().into(),
            ]);
        }
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Decodes one page (its whole extent) for `untorn page`.
fn decode_page(src: &dyn CheckSource, id: u64, hex: bool) -> Value {
    let ps = src.page_size();
    let first = if id < 2 {
        src.read_raw_meta(id)
    } else {
        src.read_raw(id, 1)
    };
    let first = match first {
        Ok(b) => b,
        Err(e) => return json!({"id": id, "error": format!("cannot read: {e}")}),
    };
    let extent = peek_extent_pages(&first).unwrap_or(1);
    let bytes = if id >= 2 && extent > 1 && extent <= MAX_EXTENT_PAGES {
        src.read_raw(id, extent).unwrap_or(first)
    } else {
        first
    };
    let mut v = json!({"id": id});
    let Some(h) = decode_header(&bytes) else {
        v["verify"] = json!("no recognisable page header (zeroed or unknown type)");
        if hex {
            v["hex"] = json!(to_hex(&bytes));
        }
        return v;
    };
    v["type"] = json!(h.page_type.as_str());
    v["page_id"] = json!(h.page_id);
    v["txid"] = json!(h.txid);
    v["checksum"] = json!(format!("{:#010x}", h.checksum));
    v["extent_pages"] = json!(h.extent_pages);
    v["count"] = json!(h.count);
    v["payload_len"] = json!(h.payload_len);
    match verify_page(&bytes, id, ps) {
        Ok(_) => v["verify"] = json!("ok"),
        Err(e) => v["verify"] = json!(e.to_string()),
    }
    let mut elements = Vec::new();
    match h.page_type {
        PageType::Branch | PageType::Leaf => match NodeView::validate(&bytes, &h) {
            Ok(view) => {
                for i in 0..view.len() {
                    let key = view.key(i).map(|k| encode(k, true)).unwrap_or(Value::Null);
                    let e = if view.is_leaf() {
                        match view.leaf_value(i) {
                            Ok(LeafValue::Inline(val)) => {
                                json!({"key": key, "value": encode(val, true)})
                            }
                            Ok(LeafValue::Overflow { extent, len }) => json!({"key": key,
                                "overflow": {"page": extent.page_id, "txid": extent.txid,
                                 "extent_pages": extent.extent_pages, "len": len}}),
                            Ok(LeafValue::Bucket(b)) => json!({"key": key,
                                "bucket": {"root": b.root.page_id, "root_txid": b.root.txid,
                                 "sequence": b.sequence, "count": b.count}}),
                            Err(e) => json!({"key": key, "error": e.to_string()}),
                        }
                    } else {
                        match view.branch_child(i) {
                            Ok(c) => json!({"key": key, "child": c.page_id, "txid": c.txid,
                                "checksum": format!("{:#010x}", c.checksum), "extent_pages": c.extent_pages}),
                            Err(e) => json!({"key": key, "error": e.to_string()}),
                        }
                    };
                    elements.push(e);
                }
            }
            Err(e) => v["elements_error"] = json!(e.to_string()),
        },
        PageType::Freelist => match decode_freelist(&bytes, &h, u64::MAX) {
            Ok(runs) => {
                for (start, len) in runs {
                    elements.push(json!({"start": start, "len": len}));
                }
            }
            Err(e) => v["elements_error"] = json!(e.to_string()),
        },
        PageType::Meta => match Meta::decode(&bytes, id, ps) {
            Ok(m) => {
                v["meta"] = json!({"txid": m.txid, "page_size": m.page_size,
                    "root": m.root.page_id, "freelist": m.freelist.page_id,
                    "high_water": m.high_water});
            }
            Err(e) => v["elements_error"] = json!(e.to_string()),
        },
        PageType::Overflow => {}
    }
    if !elements.is_empty() {
        v["elements"] = Value::Array(elements);
    }
    if hex {
        v["hex"] = json!(to_hex(&bytes));
    }
    v
}

pub fn page(a: PageArgs) -> Result<ExitCode> {
    let pages = with_source(&a.file, |src, _| {
        Ok(a.ids
            .iter()
            .map(|&id| decode_page(src, id, a.hex))
            .collect::<Vec<_>>())
    })?;
    let mut out = output::stdout();
    if a.json {
        output::json(&mut out, &pages)?;
    } else {
        for p in &pages {
            print_page(&mut out, p)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_page(out: &mut impl Write, p: &Value) -> Result<()> {
    let s = |k: &str| match &p[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    writeln!(out, "page {}", s("id"))?;
    if p.get("error").is_some() {
        writeln!(out, "  error: {}", s("error"))?;
        return Ok(());
    }
    let mut rows = Vec::new();
    for k in [
        "type",
        "page_id",
        "txid",
        "checksum",
        "extent_pages",
        "count",
        "payload_len",
        "verify",
        "elements_error",
    ] {
        if p.get(k).is_some() {
            rows.push(vec![format!("  {k}"), s(k)]);
        }
    }
    if let Some(m) = p.get("meta") {
        rows.push(vec!["  meta".into(), m.to_string()]);
    }
    output::table(out, &rows)?;
    if let Some(Value::Array(els)) = p.get("elements") {
        let mut rows = Vec::new();
        for (i, e) in els.iter().enumerate() {
            let key = match e.get("key") {
                Some(k) => crate::encoding::decode(k)
                    .map(|b| display(&b))
                    .unwrap_or_else(|_| k.to_string()),
                None => String::new(),
            };
            let what = if let Some(v) = e.get("value") {
                let v = crate::encoding::decode(v)
                    .map(|b| display(&b))
                    .unwrap_or_default();
                format!("= {v}")
            } else if let Some(c) = e.get("child") {
                format!(
                    "-> page {c} (txid {}, extent {})",
                    e["txid"], e["extent_pages"]
                )
            } else if let Some(o) = e.get("overflow") {
                format!("-> overflow page {} ({} bytes)", o["page"], o["len"])
            } else if let Some(b) = e.get("bucket") {
                format!(
                    "bucket root {} count {} sequence {}",
                    b["root"], b["count"], b["sequence"]
                )
            } else if let Some(st) = e.get("start") {
                format!("free run {st} +{}", e["len"])
            } else {
                e.to_string()
            };
            rows.push(vec![format!("  [{i}]"), key, what]);
        }
        output::table(out, &rows)?;
    }
    if let Some(Value::String(h)) = p.get("hex") {
        for (i, chunk) in h.as_bytes().chunks(64).enumerate() {
            let line = String::from_utf8_lossy(chunk);
            let spaced: Vec<String> = line
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            writeln!(out, "  {:08x}  {}", i * 32, spaced.join(" "))?;
        }
    }
    Ok(())
}

pub fn map(a: MapArgs) -> Result<ExitCode> {
    let columns = a.columns.clamp(8, 1024);
    let (report, infos) = with_source(&a.common.file, |src, _| {
        Ok(check_with_pages(src, CheckOptions::default())?)
    })?;
    let doc = svg::render(
        &infos,
        &report,
        columns,
        &a.common.file.display().to_string(),
    );
    std::fs::write(&a.svg, doc).with_context(|| format!("cannot write {}", a.svg.display()))?;
    let mut out = output::stdout();
    if a.common.json {
        output::json(
            &mut out,
            &json!({"svg": a.svg.display().to_string(), "pages": infos.len(), "findings": report.findings.len()}),
        )?;
    } else {
        writeln!(
            out,
            "wrote {} ({} pages, {} findings)",
            a.svg.display(),
            infos.len(),
            report.findings.len()
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
