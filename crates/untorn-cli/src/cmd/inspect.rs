//! `untorn stats`, `pages`, `page` and `map`: the file as pages.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value};
use untorn::unstable::check::{describe_page, page_infos, stats as walk_stats};
use untorn::unstable::report::{PageDescription, PageElement, Stats};

use super::source::{with_source, View};
use crate::args::{FileArgs, PageArgs, PageItemArgs};
use crate::backend::Format;
use crate::encoding::{display, encode, to_hex};
use crate::output;

/// `stats --json`: the one `Stats` of either format, with where it came from.
fn stats_json(format: Format, source: &str, s: &Stats) -> Value {
    json!({
        "format": format.name(),
        "source": source,
        "page_size": s.page_size,
        "txid": s.txid,
        "high_water": s.high_water,
        "file_pages": s.file_pages,
        "meta_pages": s.meta_pages,
        "branch_pages": s.branch_pages,
        "leaf_pages": s.leaf_pages,
        "overflow_pages": s.overflow_pages,
        "freelist_pages": s.freelist_pages,
        "free_pages": s.free_pages,
        "leaked_pages": s.leaked_pages,
        "corrupt_pages": s.corrupt_pages,
        "tree_depth_max": s.tree_depth_max,
        "buckets": s.buckets,
        "keys": s.keys,
        "key_bytes": s.key_bytes,
        "value_bytes": s.value_bytes,
        "fill_factor": s.fill_factor(),
        "findings": s.findings,
    })
}

pub fn stats(a: FileArgs) -> Result<ExitCode> {
    let (format, source, s) = with_source(&a.file, |view| match view {
        View::Native(src, origin) => Ok((Format::Native, origin.name(), walk_stats(src)?)),
        View::Bbolt(f) => Ok((Format::Bbolt, "data_file", untorn_bbolt::stats(f))),
    })?;
    let mut out = output::stdout();
    if a.json {
        output::json(&mut out, &stats_json(format, source, &s))?;
    } else {
        let pages = |n: u64| {
            format!(
                "{} ({} KiB)",
                output::count(n, "page"),
                n * s.page_size as u64 / 1024
            )
        };
        let rows: Vec<Vec<String>> = vec![
            vec!["format".into(), format.name().into()],
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
            vec!["buckets (all levels)".into(), s.buckets.to_string()],
            vec!["keys".into(), s.keys.to_string()],
            vec!["key bytes".into(), s.key_bytes.to_string()],
            vec!["value bytes".into(), s.value_bytes.to_string()],
            vec![
                "fill factor".into(),
                format!("{:.1}%", s.fill_factor() * 100.0),
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

/// The JSON of one page (one shape for both formats; fields a format does not have are
/// absent, and bbolt's `overflow` is its header field).
fn page_json(d: &PageDescription, hex: bool) -> Value {
    let mut v = json!({"id": d.id});
    if let Some(e) = &d.read_error {
        v["error"] = json!(format!("cannot read: {e}"));
        return v;
    }
    if let Some(h) = &d.header {
        v["type"] = json!(h.kind.as_str());
        v["page_id"] = json!(h.page_id);
        if let Some(t) = h.txid {
            v["txid"] = json!(t);
        }
        if let Some(c) = h.checksum {
            v["checksum"] = json!(format!("{c:#010x}"));
        }
        if let Some(f) = h.flags {
            v["flags"] = json!(format!("{f:#06x}"));
        }
        if let Some(e) = h.extent_pages {
            v["extent_pages"] = json!(e);
        }
        if let Some(o) = h.overflow {
            v["overflow"] = json!(o);
        }
        v["count"] = json!(h.count);
        if let Some(p) = h.payload_len {
            v["payload_len"] = json!(p);
        }
    }
    v["verify"] = json!(d.verify);
    if let Some(e) = &d.elements_error {
        v["elements_error"] = json!(e);
    }
    if let Some(m) = &d.meta {
        let mut meta = json!({"txid": m.txid, "page_size": m.page_size, "root": m.root,
            "freelist": m.freelist, "high_water": m.high_water});
        if let Some(s) = m.sequence {
            meta["sequence"] = json!(s);
        }
        if let Some(c) = m.checksum {
            meta["checksum"] = json!(format!("{c:#018x}"));
        }
        v["meta"] = meta;
    }
    if !d.elements.is_empty() {
        v["elements"] = Value::Array(d.elements.iter().map(element_json).collect());
    }
    if hex {
        v["hex"] = json!(to_hex(&d.raw));
    }
    v
}

fn element_json(e: &PageElement) -> Value {
    match e {
        PageElement::Value { key, value } => {
            json!({"key": encode(key, true), "value": encode(value, true)})
        }
        PageElement::Overflow {
            key,
            page,
            txid,
            extent_pages,
            len,
        } => json!({"key": encode(key, true), "overflow": {"page": page, "txid": txid,
            "extent_pages": extent_pages, "len": len}}),
        PageElement::Bucket {
            key,
            root,
            root_txid,
            sequence,
            count,
            inline,
        } => {
            let mut b = json!({"root": root, "sequence": sequence});
            if let Some(t) = root_txid {
                b["root_txid"] = json!(t);
            }
            if let Some(c) = count {
                b["count"] = json!(c);
            }
            if let Some(i) = inline {
                b["inline"] = json!(i);
            }
            json!({"key": encode(key, true), "bucket": b})
        }
        PageElement::Child {
            key,
            page,
            txid,
            checksum,
            extent_pages,
        } => {
            let mut c = json!({"key": encode(key, true), "child": page});
            if let Some(t) = txid {
                c["txid"] = json!(t);
            }
            if let Some(s) = checksum {
                c["checksum"] = json!(format!("{s:#010x}"));
            }
            if let Some(x) = extent_pages {
                c["extent_pages"] = json!(x);
            }
            c
        }
        PageElement::FreeRun { start, len } => json!({"start": start, "len": len}),
        PageElement::Error { key, message } => json!({
            "key": key.as_deref().map_or(Value::Null, |k| encode(k, true)),
            "error": message,
        }),
    }
}

pub fn page(a: PageArgs) -> Result<ExitCode> {
    let descriptions = with_source(&a.file, |view| {
        Ok(a.ids
            .iter()
            .map(|&id| match view {
                View::Native(src, _) => describe_page(src, id),
                View::Bbolt(f) => untorn_bbolt::describe_page(f, id),
            })
            .collect::<Vec<_>>())
    })?;
    // A page that cannot be read is an error (stderr, exit 2); the others still print.
    let mut failed = 0usize;
    for d in &descriptions {
        if let Some(e) = &d.read_error {
            eprintln!("untorn: page {}: cannot read: {e}", d.id);
            failed += 1;
        }
    }
    let pages: Vec<Value> = descriptions.iter().map(|d| page_json(d, a.hex)).collect();
    let mut out = output::stdout();
    if a.json {
        output::json(&mut out, &pages)?;
    } else {
        for (p, d) in pages.iter().zip(&descriptions) {
            if d.read_error.is_none() {
                print_page(&mut out, p)?;
            }
        }
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(crate::EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

/// `untorn page-item FILE PAGE INDEX`: one element of a page, its key and value.
pub fn page_item(a: PageItemArgs) -> Result<ExitCode> {
    let d = with_source(&a.file, |view| {
        Ok(match view {
            View::Native(src, _) => describe_page(src, a.page),
            View::Bbolt(f) => untorn_bbolt::describe_page(f, a.page),
        })
    })?;
    if let Some(e) = &d.read_error {
        anyhow::bail!("page {}: cannot read: {e}", a.page);
    }
    let Some(e) = d.elements.get(a.index) else {
        anyhow::bail!(
            "page {} has {} (index {} is out of range)",
            a.page,
            output::count(d.elements.len() as u64, "element"),
            a.index
        );
    };
    let (key, value): (Option<&[u8]>, Result<&[u8], String>) = match e {
        PageElement::Value { key, value } => (Some(key), Ok(value)),
        PageElement::Overflow {
            key, page, len, ..
        } => (
            Some(key),
            Err(format!(
                "the value ({len} bytes) is in the overflow extent at page {page}: read it with `untorn get`"
            )),
        ),
        PageElement::Bucket { key, root, .. } => {
            (Some(key), Err(format!("a bucket (root page {root}), not a value")))
        }
        PageElement::Child { key, page, .. } => {
            (Some(key), Err(format!("a branch element: child page {page}")))
        }
        PageElement::FreeRun { start, len } => {
            (None, Err(format!("a freelist run: pages {start}+{len}")))
        }
        PageElement::Error { key, message } => (key.as_deref(), Err(message.clone())),
    };
    let show = |b: &[u8]| {
        if a.hex {
            crate::encoding::display_hex(b)
        } else {
            display(b)
        }
    };
    let mut out = output::stdout();
    if a.json {
        output::json(
            &mut out,
            &json!({"page": a.page, "index": a.index,
                "key": key.map(|k| encode(k, !a.hex)),
                "value": value.as_ref().ok().map(|v| encode(v, !a.hex)),
                "note": value.as_ref().err()}),
        )?;
    } else if a.key_only || a.value_only {
        let bytes = if a.key_only {
            key.ok_or_else(|| anyhow::anyhow!("this element has no key"))?
        } else {
            value.map_err(|why| anyhow::anyhow!("no value to print: {why}"))?
        };
        if a.hex {
            writeln!(out, "{}", crate::encoding::display_hex(bytes))?;
        } else {
            out.write_all(bytes)?;
        }
    } else {
        if let Some(k) = key {
            writeln!(out, "key    {}", show(k))?;
        }
        match value {
            Ok(v) => writeln!(out, "value  {}", show(v))?,
            Err(why) => writeln!(out, "value  none: {why}")?,
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
