//! `untorn stats`, `pages`, `page` and `map`: the file as pages.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{json, Value};
use untorn::check::{check_with_pages, page_infos, stats as walk_stats, CheckOptions, CheckSource};
use untorn::format::{
    decode_freelist, decode_header, peek_extent_pages, verify_page, LeafValue, Meta, NodeView,
    PageId, PageType,
};
use untorn::limits::MAX_EXTENT_PAGES;

use untorn_bbolt::format::{flags_name, BucketHeader, FLAG_BRANCH, FLAG_LEAF, FLAG_META};
use untorn_bbolt::{BoltFile, PageBody};

use super::source::{with_source, View};
use crate::args::{FileArgs, MapArgs, PageArgs};
use crate::backend::Format;
use crate::encoding::{display, encode, to_hex};
use crate::output;
use crate::svg;

/// `stats --json`. Fields the bbolt library does not measure (tree depth, key and value
/// bytes, fill factor) are null for bbolt files.
#[derive(Debug, Serialize)]
struct JsonStats {
    format: &'static str,
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
    tree_depth_max: Option<u32>,
    buckets: u64,
    keys: u64,
    key_bytes: Option<u64>,
    value_bytes: Option<u64>,
    fill_factor: Option<f64>,
    findings: u64,
}

fn bbolt_stats(f: &BoltFile) -> JsonStats {
    let s = untorn_bbolt::stats(f);
    let findings = untorn_bbolt::check_file(f, untorn_bbolt::CheckOptions::default());
    JsonStats {
        format: Format::Bbolt.name(),
        source: "data_file",
        page_size: s.page_size as usize,
        txid: f.meta().txid,
        high_water: s.hwm,
        file_pages: s.file_len / u64::from(s.page_size.max(1)),
        meta_pages: 2,
        branch_pages: s.branch_pages,
        leaf_pages: s.leaf_pages,
        overflow_pages: s.overflow_pages,
        freelist_pages: s.freelist_pages,
        free_pages: s.free_pages,
        leaked_pages: s.leaked_pages,
        corrupt_pages: s.corrupt_pages,
        tree_depth_max: None,
        buckets: s.buckets,
        keys: s.keys,
        key_bytes: None,
        value_bytes: None,
        fill_factor: None,
        findings: findings.findings.len() as u64,
    }
}

pub fn stats(a: FileArgs) -> Result<ExitCode> {
    let s = with_source(&a.file, |view| {
        let (src, origin) = match view {
            View::Native(src, origin) => (src, origin),
            View::Bbolt(f) => return Ok(bbolt_stats(f)),
        };
        let s = walk_stats(src)?;
        Ok(JsonStats {
            format: Format::Native.name(),
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
            tree_depth_max: Some(s.tree_depth_max),
            buckets: s.buckets,
            keys: s.keys,
            key_bytes: Some(s.key_bytes),
            value_bytes: Some(s.value_bytes),
            fill_factor: Some(s.fill_factor()),
            findings: s.findings,
        })
    })?;
    let mut out = output::stdout();
    if a.json {
        output::json(&mut out, &s)?;
    } else {
        let pages = |n: u64| format!("{n} pages ({} KiB)", n * s.page_size as u64 / 1024);
        let opt = |v: Option<u64>| v.map_or_else(|| "n/a".to_owned(), |v| v.to_string());
        let rows: Vec<Vec<String>> = vec![
            vec!["format".into(), s.format.into()],
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
            vec![
                "tree depth (max)".into(),
                opt(s.tree_depth_max.map(u64::from)),
            ],
            vec!["buckets".into(), s.buckets.to_string()],
            vec!["keys".into(), s.keys.to_string()],
            vec!["key bytes".into(), opt(s.key_bytes)],
            vec!["value bytes".into(), opt(s.value_bytes)],
            vec![
                "fill factor".into(),
                s.fill_factor
                    .map_or_else(|| "n/a".to_owned(), |f| format!("{:.1}%", f * 100.0)),
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
    let infos = with_source(&a.file, |view| match view {
        View::Native(src, _) => Ok(page_infos(src)?),
        View::Bbolt(f) => Ok(untorn_bbolt::pages(f)),
    })?;
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
        src.read_raw(PageId(id), 1)
    };
    let first = match first {
        Ok(b) => b,
        Err(e) => return json!({"id": id, "error": format!("cannot read: {e}")}),
    };
    let extent = peek_extent_pages(&first).unwrap_or(1);
    let bytes = if id >= 2 && extent > 1 && extent <= MAX_EXTENT_PAGES {
        src.read_raw(PageId(id), extent).unwrap_or(first)
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
    v["page_id"] = json!(h.page_id.get());
    v["txid"] = json!(h.txid.get());
    v["checksum"] = json!(format!("{:#010x}", h.checksum));
    v["extent_pages"] = json!(h.extent_pages);
    v["count"] = json!(h.count);
    v["payload_len"] = json!(h.payload_len);
    match verify_page(&bytes, PageId(id), ps) {
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
                                "overflow": {"page": extent.page_id.get(), "txid": extent.txid.get(),
                                 "extent_pages": extent.extent_pages, "len": len}}),
                            Ok(LeafValue::Bucket(b)) => json!({"key": key,
                                "bucket": {"root": b.root.page_id.get(), "root_txid": b.root.txid.get(),
                                 "sequence": b.sequence, "count": b.count}}),
                            Err(e) => json!({"key": key, "error": e.to_string()}),
                        }
                    } else {
                        match view.branch_child(i) {
                            Ok(c) => {
                                json!({"key": key, "child": c.page_id.get(), "txid": c.txid.get(),
                                "checksum": format!("{:#010x}", c.checksum), "extent_pages": c.extent_pages})
                            }
                            Err(e) => json!({"key": key, "error": e.to_string()}),
                        }
                    };
                    elements.push(e);
                }
            }
            Err(e) => v["elements_error"] = json!(e.to_string()),
        },
        PageType::Freelist => match decode_freelist(&bytes, &h, PageId(u64::MAX)) {
            Ok(runs) => {
                for (start, len) in runs {
                    elements.push(json!({"start": start, "len": len}));
                }
            }
            Err(e) => v["elements_error"] = json!(e.to_string()),
        },
        PageType::Meta => match Meta::decode(&bytes, id, ps) {
            Ok(m) => {
                v["meta"] = json!({"txid": m.txid.get(), "page_size": m.page_size,
                    "root": m.root.page_id.get(), "freelist": m.freelist.page_id.get(),
                    "high_water": m.high_water.get()});
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

/// Decodes one bbolt page for `untorn page`, in the same JSON shape as untorn pages
/// (fields bbolt pages do not have are absent; `overflow` is bbolt's header field).
fn decode_bbolt_page(f: &BoltFile, id: u64, hex: bool) -> Value {
    let view = match untorn_bbolt::page(f, id) {
        Ok(v) => v,
        Err(e) => return json!({"id": id, "error": format!("cannot read: {e}")}),
    };
    let h = view.header;
    let mut v = json!({"id": id, "type": flags_name(h.flags), "page_id": h.id,
        "flags": format!("{:#06x}", h.flags), "count": h.count, "overflow": h.overflow});
    // The same strict reading dump/get/salvage use: header id, type, element bounds.
    let verify = match h.flags {
        FLAG_BRANCH | FLAG_LEAF => f.read_node(id).err().map(|p| p.to_string()),
        FLAG_META => usize::try_from(id)
            .ok()
            .and_then(|i| f.metas().get(i))
            .map_or(Some("not a meta slot".to_owned()), |slot| {
                slot.problem.as_ref().map(ToString::to_string)
            }),
        _ if h.id != id => Some(format!("page header names page {}", h.id)),
        _ => None,
    };
    v["verify"] = json!(verify.unwrap_or_else(|| "ok".to_owned()));
    let mut elements = Vec::new();
    match &view.body {
        PageBody::Meta(m) => {
            v["meta"] = json!({"txid": m.txid, "page_size": m.page_size, "root": m.root,
                "sequence": m.sequence,
                "freelist": if m.no_freelist_sync() { None } else { Some(m.freelist) },
                "high_water": m.pgid, "checksum": format!("{:#018x}", m.checksum)});
        }
        PageBody::Branch(es) => {
            for (k, child) in es {
                elements.push(json!({"key": encode(k, true), "child": child}));
            }
        }
        PageBody::Leaf(es) => {
            for (flags, k, val) in es {
                let key = encode(k, true);
                if flags & untorn_bbolt::format::LEAF_FLAG_BUCKET == 0 {
                    elements.push(json!({"key": key, "value": encode(val, true)}));
                } else if let Some(b) = BucketHeader::decode(val) {
                    elements.push(json!({"key": key, "bucket": {"root": b.root,
                        "sequence": b.sequence, "inline": b.root == 0}}));
                } else {
                    elements
                        .push(json!({"key": key, "error": "bucket value shorter than its header"}));
                }
            }
        }
        PageBody::Freelist(ids) => {
            // Runs of consecutive ids, as untorn's freelist prints.
            let mut run: Option<(u64, u64)> = None;
            for &p in ids {
                run = match run {
                    Some((start, len)) if start.checked_add(len) == Some(p) => {
                        Some((start, len + 1))
                    }
                    Some((start, len)) => {
                        elements.push(json!({"start": start, "len": len}));
                        Some((p, 1))
                    }
                    None => Some((p, 1)),
                };
            }
            if let Some((start, len)) = run {
                elements.push(json!({"start": start, "len": len}));
            }
        }
        PageBody::Undecodable(e) => v["elements_error"] = json!(e),
    }
    if !elements.is_empty() {
        v["elements"] = Value::Array(elements);
    }
    if hex {
        v["hex"] = json!(to_hex(&view.raw));
    }
    v
}

pub fn page(a: PageArgs) -> Result<ExitCode> {
    let pages = with_source(&a.file, |view| {
        Ok(a.ids
            .iter()
            .map(|&id| match view {
                View::Native(src, _) => decode_page(src, id, a.hex),
                View::Bbolt(f) => decode_bbolt_page(f, id, a.hex),
            })
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
        "flags",
        "txid",
        "checksum",
        "extent_pages",
        "overflow",
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
                match e.get("txid") {
                    Some(t) => format!("-> page {c} (txid {t}, extent {})", e["extent_pages"]),
                    None => format!("-> page {c}"),
                }
            } else if let Some(o) = e.get("overflow") {
                format!("-> overflow page {} ({} bytes)", o["page"], o["len"])
            } else if let Some(b) = e.get("bucket") {
                match b.get("count") {
                    Some(n) => format!(
                        "bucket root {} count {n} sequence {}",
                        b["root"], b["sequence"]
                    ),
                    None if b["inline"] == json!(true) => {
                        format!("inline bucket, sequence {}", b["sequence"])
                    }
                    None => format!("bucket root {} sequence {}", b["root"], b["sequence"]),
                }
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
    let (format, (report, infos)) = with_source(&a.common.file, |view| match view {
        View::Native(src, _) => Ok((
            Format::Native.name(),
            check_with_pages(src, CheckOptions::default())?,
        )),
        View::Bbolt(f) => Ok((
            Format::Bbolt.name(),
            (
                untorn_bbolt::check_file(f, untorn_bbolt::CheckOptions::default()),
                untorn_bbolt::pages(f),
            ),
        )),
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
            &json!({"format": format, "svg": a.svg.display().to_string(), "pages": infos.len(), "findings": report.findings.len()}),
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
