//! `untorn surgery ...`: bbolt 1.4 `bbolt surgery` operations through
//! `untorn_bbolt::surgery`, on a copy (`--output DST`) unless `--in-place`. For untorn
//! files only `meta validate` (read-only) is supported so far.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use untorn_bbolt::surgery::{self, MetaUpdate, SurgeryOutcome};

use crate::args::{
    FileArgs, FreelistOp, MetaOp, MetaUpdateArgs, SurgeryArgs, SurgeryOp, SurgeryTarget,
};
use crate::backend::{detect, same_file, Format};
use crate::output;
use crate::EXIT_FINDINGS;

pub fn run(a: SurgeryArgs) -> Result<ExitCode> {
    match a.op {
        SurgeryOp::RevertMeta(t) => apply(&t, "revert-meta", surgery::revert_meta),
        SurgeryOp::CopyPage(c) => apply(&c.target, "copy-page", |s, d| {
            surgery::copy_page(s, d, c.from_page, c.to_page)
        }),
        SurgeryOp::ClearPage(c) => apply(&c.target, "clear-page", |s, d| {
            surgery::clear_page(s, d, c.page)
        }),
        SurgeryOp::ClearPageElements(c) => {
            let end = match c.to_index {
                -1 => None,
                n => Some(usize::try_from(n).context("--to-index must be -1 or an index")?),
            };
            if end.is_some_and(|end| end <= c.from_index) {
                bail!("--to-index must be greater than --from-index (or -1)");
            }
            apply(&c.target, "clear-page-elements", |s, d| {
                surgery::clear_page_elements(s, d, c.page, c.from_index, end)
            })
        }
        SurgeryOp::Freelist(f) => match f.op {
            FreelistOp::Abandon(t) => apply(&t, "freelist abandon", surgery::freelist_abandon),
            FreelistOp::Rebuild(t) => apply(&t, "freelist rebuild", surgery::freelist_rebuild),
        },
        SurgeryOp::Meta(m) => match m.op {
            MetaOp::Validate(v) => validate(&v),
            MetaOp::Update(u) => update(&u),
        },
    }
}

/// Refuses anything but a bbolt file.
fn require_bbolt(path: &Path) -> Result<()> {
    match detect(path)? {
        Format::Bbolt => Ok(()),
        Format::Native => bail!(
            "{}: this surgery operation is not supported for untorn files yet (`surgery meta validate` is; `untorn salvage` rebuilds a damaged file)",
            path.display()
        ),
    }
}

/// The file the operation writes: DST (checked) or SRC with `--in-place`.
fn destination(t: &SurgeryTarget) -> Result<PathBuf> {
    match (&t.output, t.in_place) {
        (_, true) => Ok(t.src.clone()),
        (None, false) => bail!("give --output DST (or --in-place to modify SRC)"),
        (Some(dst), false) => {
            if same_file(&t.src, dst) {
                bail!("--output names SRC; use --in-place to modify SRC itself");
            }
            if dst.exists() && !t.force {
                bail!("{} exists; use --force to replace it", dst.display());
            }
            Ok(dst.clone())
        }
    }
}

/// Runs one writing operation and reports what it changed.
fn apply(
    t: &SurgeryTarget,
    op: &str,
    f: impl FnOnce(&Path, &Path) -> untorn_bbolt::Result<SurgeryOutcome>,
) -> Result<ExitCode> {
    require_bbolt(&t.src)?;
    let dst = destination(t)?;
    let existed = dst.exists();
    let outcome = match f(&t.src, &dst) {
        Ok(o) => o,
        Err(e) => {
            // Do not leave a half-made copy behind (SRC and an old DST are kept).
            if !t.in_place && !existed {
                let _ = std::fs::remove_file(&dst);
            }
            return Err(anyhow::Error::from(e).context(format!("{op} failed")));
        }
    };
    let mut out = output::stdout();
    if t.json {
        output::json(
            &mut out,
            &json!({"format": Format::Bbolt.name(), "op": op, "src": t.src.display().to_string(),
                "dst": dst.display().to_string(), "in_place": t.in_place,
                "message": outcome.message, "freelist_abandoned": outcome.freelist_abandoned}),
        )?;
    } else {
        let mut rows = vec![
            vec![op.to_owned(), outcome.message.clone()],
            vec!["wrote".to_owned(), dst.display().to_string()],
        ];
        if outcome.freelist_abandoned {
            rows.push(vec![
                "note".to_owned(),
                "the freelist is abandoned in both metas: bbolt rebuilds it on open, \
                 or run `untorn surgery freelist rebuild`"
                    .to_owned(),
            ]);
        }
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn validate(a: &FileArgs) -> Result<ExitCode> {
    if detect(&a.file)? == Format::Native {
        return validate_untorn(a);
    }
    require_bbolt(&a.file)?;
    let metas = surgery::meta_validate(&a.file)
        .with_context(|| format!("cannot read the metas of {}", a.file.display()))?;
    let mut out = output::stdout();
    let all_valid = metas.iter().all(Result::is_ok);
    if a.json {
        let v: Vec<_> = metas
            .iter()
            .enumerate()
            .map(|(i, m)| match m {
                Ok(m) => json!({"slot": i, "valid": true, "problem": null, "txid": m.txid,
                    "root": m.root, "high_water": m.pgid,
                    "freelist": if m.no_freelist_sync() { None } else { Some(m.freelist) }}),
                Err(p) => json!({"slot": i, "valid": false, "problem": p.to_string()}),
            })
            .collect();
        output::json(
            &mut out,
            &json!({"format": Format::Bbolt.name(), "ok": all_valid, "metas": v}),
        )?;
    } else {
        let rows: Vec<Vec<String>> = metas
            .iter()
            .enumerate()
            .map(|(i, m)| {
                vec![
                    format!("meta {i}"),
                    match m {
                        Ok(m) => format!(
                            "ok: txid {}, root {}, freelist {}, high-water mark {}",
                            m.txid,
                            m.root,
                            if m.no_freelist_sync() {
                                "none".to_owned()
                            } else {
                                m.freelist.to_string()
                            },
                            m.pgid
                        ),
                        Err(p) => format!("INVALID: {p}"),
                    },
                ]
            })
            .collect();
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

/// `surgery meta validate` of an untorn file: both slots decoded and validated on their
/// own (`untorn::unstable::superblock::validate_slots`); read-only.
fn validate_untorn(a: &FileArgs) -> Result<ExitCode> {
    let file = std::fs::File::open(&a.file)
        .with_context(|| format!("cannot open {}", a.file.display()))?;
    let storage = untorn::FileStorage::new(file);
    let (ps, metas) = untorn::unstable::superblock::validate_slots(&storage)
        .with_context(|| format!("cannot read the metas of {}", a.file.display()))?;
    let all_valid = metas.iter().all(Result::is_ok);
    let mut out = output::stdout();
    if a.json {
        let v: Vec<_> = metas
            .iter()
            .enumerate()
            .map(|(i, m)| match m {
                Ok(m) => json!({"slot": i, "valid": true, "problem": null,
                    "txid": m.txid.get(), "meta_seq": m.meta_seq,
                    "root": m.root.page_id.get(), "freelist": m.freelist.page_id.get(),
                    "high_water": m.high_water.get(), "state": m.state.as_str(),
                    "next_bucket_id": m.next_bucket_id.get(), "db_id": m.db_id.to_string()}),
                Err(p) => json!({"slot": i, "valid": false, "problem": p}),
            })
            .collect();
        output::json(
            &mut out,
            &json!({"format": Format::Native.name(), "ok": all_valid, "page_size": ps, "metas": v}),
        )?;
    } else {
        let mut rows: Vec<Vec<String>> = metas
            .iter()
            .enumerate()
            .map(|(i, m)| {
                vec![
                    format!("meta {i}"),
                    match m {
                        Ok(m) => format!(
                            "ok: txid {}, meta_seq {}, root {}, freelist {}, high-water mark {}, {}",
                            m.txid,
                            m.meta_seq,
                            m.root.page_id,
                            m.freelist.page_id,
                            m.high_water,
                            m.state.as_str()
                        ),
                        Err(p) => format!("INVALID: {p}"),
                    },
                ]
            })
            .collect();
        rows.push(vec!["page size".to_owned(), ps.to_string()]);
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

/// A number in decimal or `0x` hex.
fn number(s: &str) -> Result<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .with_context(|| format!("{s:?} is not a number"))
}

/// Parses `--fields name:value,...` (bbolt's names: pageSize, root, freelist, pgid).
fn parse_fields(s: &str) -> Result<MetaUpdate> {
    let mut u = MetaUpdate::default();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((name, value)) = part.split_once(':') else {
            bail!("field {part:?} is not NAME:VALUE");
        };
        let v = number(value)?;
        match name.trim() {
            "pageSize" | "page_size" => {
                u.page_size = Some(u32::try_from(v).context("pageSize is too large")?)
            }
            "root" => u.root = Some(v),
            "freelist" => u.freelist = Some(v),
            "pgid" => u.pgid = Some(v),
            other => {
                bail!("unknown meta field {other:?} (expected pageSize, root, freelist, pgid)")
            }
        }
    }
    if u == MetaUpdate::default() {
        bail!("--fields names no field");
    }
    Ok(u)
}

fn update(a: &MetaUpdateArgs) -> Result<ExitCode> {
    if a.meta > 1 {
        bail!("--meta must be 0 or 1");
    }
    let fields = parse_fields(&a.fields)?;
    apply(&a.target, "meta update", |s, d| {
        surgery::meta_update(s, d, a.meta, &fields)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_fields_parse() {
        let u = parse_fields("root:16, pgid:0x40,pageSize:4096").unwrap();
        assert_eq!(u.root, Some(16));
        assert_eq!(u.pgid, Some(64));
        assert_eq!(u.page_size, Some(4096));
        assert_eq!(u.freelist, None);
        assert!(parse_fields("").is_err());
        assert!(parse_fields("txid:3").is_err());
        assert!(parse_fields("root").is_err());
        assert!(parse_fields("root:x").is_err());
    }
}
