//! `untorn surgery ...`: the bbolt surgery set for both formats — bbolt files through
//! `untorn_bbolt::surgery` (bbolt 1.4's `bbolt surgery`), untorn files through
//! `untorn::unstable::surgery` — on a copy (`--output DST`) unless `--in-place`. Both
//! share this plumbing: where the result goes, the lines saying what the operation
//! dropped, and check's verdict on the result, printed last.
//!
//! An untorn file is staged: SRC and its journal are copied to a temporary pair beside
//! the destination, the operation runs on the pair, both are synced, and they are
//! renamed over the destination (data file first, then the journal; see
//! `docs/crash_safety.md`). SRC is never written without `--in-place`, and a failed or
//! refused operation leaves no file behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::json;
use untorn::unstable::report::Report;
use untorn::unstable::surgery as native;
use untorn::{FileStorage, Storage};
use untorn_bbolt::surgery::{self, MetaUpdate, SurgeryOutcome};

use crate::args::{
    FileArgs, FreelistOp, MetaOp, MetaUpdateArgs, SurgeryArgs, SurgeryOp, SurgeryTarget,
};
use crate::backend::{detect, same_file, Format};
use crate::output;
use crate::EXIT_FINDINGS;

pub fn run(a: SurgeryArgs) -> Result<ExitCode> {
    match a.op {
        SurgeryOp::RevertMeta(t) => match detect(&t.src)? {
            Format::Native => apply_native(&t, "revert-meta", true, native::revert_meta),
            Format::Bbolt => apply(
                &t,
                "revert-meta",
                "the newest commit (the newer meta's transaction)".into(),
                surgery::revert_meta,
            ),
        },
        SurgeryOp::CopyPage(c) => match detect(&c.target.src)? {
            Format::Native => apply_native(&c.target, "copy-page", false, |d, j| {
                native::copy_page(d, j, c.from_page, c.to_page)
            }),
            Format::Bbolt => apply(
                &c.target,
                "copy-page",
                format!(
                    "the contents of page {} (replaced by page {}'s)",
                    c.to_page, c.from_page
                ),
                |s, d| surgery::copy_page(s, d, c.from_page, c.to_page),
            ),
        },
        SurgeryOp::ClearPage(c) => match detect(&c.target.src)? {
            Format::Native => apply_native(&c.target, "clear-page", false, |d, j| {
                native::clear_page(d, j, c.page)
            }),
            Format::Bbolt => apply(
                &c.target,
                "clear-page",
                format!("every key of page {} and every page below it", c.page),
                |s, d| surgery::clear_page(s, d, c.page),
            ),
        },
        SurgeryOp::ClearPageElements(c) => {
            let end = match c.to_index {
                -1 => None,
                n => Some(usize::try_from(n).context("--to-index must be -1 or an index")?),
            };
            if end.is_some_and(|end| end <= c.from_index) {
                bail!("--to-index must be greater than --from-index (or -1)");
            }
            match detect(&c.target.src)? {
                Format::Native => apply_native(&c.target, "clear-page-elements", false, |d, j| {
                    native::clear_page_elements(d, j, c.page, c.from_index, end)
                }),
                Format::Bbolt => apply(
                    &c.target,
                    "clear-page-elements",
                    format!(
                        "elements [{}, {}) of page {}, with everything below them",
                        c.from_index,
                        end.map_or_else(|| "end".to_owned(), |e| e.to_string()),
                        c.page
                    ),
                    |s, d| surgery::clear_page_elements(s, d, c.page, c.from_index, end),
                ),
            }
        }
        SurgeryOp::Freelist(f) => match f.op {
            FreelistOp::Abandon(t) => match detect(&t.src)? {
                Format::Native => {
                    apply_native(&t, "freelist abandon", false, native::freelist_abandon)
                }
                Format::Bbolt => apply(
                    &t,
                    "freelist abandon",
                    String::new(),
                    surgery::freelist_abandon,
                ),
            },
            FreelistOp::Rebuild(t) => match detect(&t.src)? {
                Format::Native => {
                    apply_native(&t, "freelist rebuild", false, native::freelist_rebuild)
                }
                Format::Bbolt => apply(
                    &t,
                    "freelist rebuild",
                    String::new(),
                    surgery::freelist_rebuild,
                ),
            },
        },
        SurgeryOp::Meta(m) => match m.op {
            MetaOp::Validate(v) => validate(&v),
            MetaOp::Update(u) => update(&u),
        },
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

/// What a writing surgery did, for either format: rendered by [`render`].
struct Done {
    format: Format,
    op: &'static str,
    dst: PathBuf,
    message: String,
    /// One sentence per thing dropped (empty: nothing).
    dropped: Vec<String>,
    notes: Vec<String>,
    kept_journal: Option<PathBuf>,
    freelist_abandoned: bool,
    check: Report,
}

/// Runs one writing bbolt operation (`untorn_bbolt::surgery` copies SRC itself).
fn apply(
    t: &SurgeryTarget,
    op: &'static str,
    drops: String,
    f: impl FnOnce(&Path, &Path) -> untorn_bbolt::Result<SurgeryOutcome>,
) -> Result<ExitCode> {
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
    let mut notes = Vec::new();
    if outcome.freelist_abandoned {
        notes.push(
            "the freelist is abandoned in both metas: bbolt rebuilds it on open, \
             or run `untorn surgery freelist rebuild`"
                .to_owned(),
        );
    }
    let check = verdict(Format::Bbolt, &dst)?;
    render(
        t,
        &Done {
            format: Format::Bbolt,
            op,
            dst,
            message: outcome.message,
            dropped: if drops.is_empty() {
                Vec::new()
            } else {
                vec![drops]
            },
            notes,
            kept_journal: None,
            freelist_abandoned: outcome.freelist_abandoned,
            check,
        },
    )
}

/// The staged pair of an untorn surgery: a temporary data file and journal beside the
/// destination, removed unless renamed into place.
struct Staged {
    data: PathBuf,
    journal: PathBuf,
    renamed: bool,
}

impl Staged {
    fn new(dst: &Path) -> Staged {
        let name = dst
            .file_name()
            .map_or_else(|| "db".into(), |n| n.to_string_lossy().into_owned());
        let data = dst.with_file_name(format!(".{name}.surgery-{}", std::process::id()));
        Staged {
            journal: untorn::journal_path(&data),
            data,
            renamed: false,
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.data);
            let _ = std::fs::remove_file(&self.journal);
        }
    }
}

fn open_rw(path: &Path) -> Result<Arc<dyn Storage>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(FileStorage::with_path(f, path)))
}

/// Copies the journal's bytes to `<journal>.rollback-<unix-seconds>` (a new name, synced),
/// as a rollback does, before a revert resets the journal.
fn keep_journal_aside(from: &Path, beside: &Path) -> Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("{}.rollback-{secs}", beside.display());
    let mut target = PathBuf::from(&base);
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    std::fs::copy(from, &target)
        .with_context(|| format!("cannot keep the journal aside as {}", target.display()))?;
    std::fs::File::open(&target)
        .and_then(|f| f.sync_all())
        .and_then(|()| untorn::storage::sync_parent_directory(&target))
        .with_context(|| format!("cannot sync {}", target.display()))?;
    Ok(target)
}

/// Runs one untorn operation on a staged copy of SRC and its journal, then renames the
/// pair over the destination. `keep_journal`: the operation resets the journal (a
/// revert), so its bytes are kept aside first.
fn apply_native(
    t: &SurgeryTarget,
    op: &'static str,
    keep_journal: bool,
    f: impl FnOnce(
        Arc<dyn Storage>,
        Arc<dyn Storage>,
    ) -> std::result::Result<native::Outcome, native::SurgeryError>,
) -> Result<ExitCode> {
    let dst = destination(t)?;
    let dst_journal = untorn::journal_path(&dst);
    if !t.in_place && dst_journal.exists() && !t.force {
        bail!(
            "{} exists; use --force to replace it",
            dst_journal.display()
        );
    }
    // An application holding SRC open for writing may change it under the copy.
    let src_file =
        std::fs::File::open(&t.src).with_context(|| format!("cannot open {}", t.src.display()))?;
    let locked = if t.in_place {
        src_file.try_lock()
    } else {
        src_file.try_lock_shared()
    };
    if let Err(std::fs::TryLockError::WouldBlock) = locked {
        bail!(
            "{} is open in another process ({}); close it first",
            t.src.display(),
            if t.in_place {
                "in-place surgery needs it closed everywhere"
            } else {
                "a writer holds it"
            }
        );
    }
    let src_journal = untorn::journal_path(&t.src);
    let mut staged = Staged::new(&dst);
    std::fs::copy(&t.src, &staged.data).with_context(|| {
        format!(
            "cannot copy {} to {}",
            t.src.display(),
            staged.data.display()
        )
    })?;
    if src_journal.exists() {
        std::fs::copy(&src_journal, &staged.journal).with_context(|| {
            format!(
                "cannot copy {} to {}",
                src_journal.display(),
                staged.journal.display()
            )
        })?;
    } else {
        std::fs::File::create(&staged.journal)
            .with_context(|| format!("cannot create {}", staged.journal.display()))?;
    }
    let outcome = f(open_rw(&staged.data)?, open_rw(&staged.journal)?)
        .map_err(|e| anyhow::Error::from(e).context(format!("{op} failed")))?;
    for p in [&staged.data, &staged.journal] {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", p.display()))?;
    }
    let kept_journal = match std::fs::metadata(&src_journal) {
        Ok(m) if keep_journal && m.len() > 512 => {
            Some(keep_journal_aside(&src_journal, &dst_journal)?)
        }
        _ => None,
    };
    // Data file first: a crash between the renames leaves the new data file beside the
    // old journal, whose generation the new metas retired (never replayed).
    std::fs::rename(&staged.data, &dst).with_context(|| {
        format!(
            "cannot rename {} to {}",
            staged.data.display(),
            dst.display()
        )
    })?;
    staged.renamed = true;
    std::fs::rename(&staged.journal, &dst_journal).with_context(|| {
        format!(
            "cannot rename {} to {}",
            staged.journal.display(),
            dst_journal.display()
        )
    })?;
    untorn::storage::sync_parent_directory(&dst)
        .with_context(|| format!("cannot sync the directory of {}", dst.display()))?;
    drop(src_file);
    let mut notes = Vec::new();
    notes.push(format!("the result is at txid {}", outcome.txid));
    if outcome.freelist_rebuilt {
        notes.push("the freelist was rebuilt by a walk of the tree".to_owned());
    } else if outcome.leaked_pages > 0 {
        notes.push(format!(
            "{} neither reachable nor free (the tree has unreadable pages, so the freelist \
             was not rebuilt; check reports them as leaks)",
            output::count(outcome.leaked_pages, "page")
        ));
    }
    if !outcome.unreadable_pages.is_empty() {
        let ids: Vec<String> = outcome
            .unreadable_pages
            .iter()
            .take(10)
            .map(u64::to_string)
            .collect();
        notes.push(format!(
            "the tree still references {} that do not verify: {}{}",
            output::count(outcome.unreadable_pages.len() as u64, "page"),
            ids.join(", "),
            if outcome.unreadable_pages.len() > 10 {
                ", ..."
            } else {
                ""
            }
        ));
    }
    let check = verdict(Format::Native, &dst)?;
    render(
        t,
        &Done {
            format: Format::Native,
            op,
            dst,
            message: outcome.message,
            dropped: outcome.dropped.iter().map(ToString::to_string).collect(),
            notes,
            kept_journal,
            freelist_abandoned: false,
            check,
        },
    )
}

/// Check's verdict on the result (read-only).
fn verdict(format: Format, path: &Path) -> Result<Report> {
    match format {
        Format::Bbolt => untorn_bbolt::check_with(path, untorn_bbolt::CheckOptions::default())
            .with_context(|| format!("cannot check {}", path.display())),
        Format::Native => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(file));
            let journal = super::source::journal_beside(path);
            untorn::unstable::check::check_storage_with_journal(
                storage,
                journal.as_ref().map(|j| j as &dyn Storage),
                untorn::CheckOptions::default(),
            )
            .with_context(|| format!("cannot check {}", path.display()))
        }
    }
}

fn verdict_line(r: &Report) -> String {
    let errors = r.findings.iter().filter(|f| !f.kind.is_warning()).count();
    let warnings = r.findings.len() - errors;
    if errors == 0 {
        format!(
            "ok: {} and {} checked{}",
            output::count(r.pages_checked, "page"),
            output::count(r.keys_checked, "key"),
            if warnings > 0 {
                format!(", {}", output::count(warnings as u64, "warning"))
            } else {
                String::new()
            }
        )
    } else {
        format!(
            "{}{}{}; first: {}",
            output::count(errors as u64, "error"),
            if warnings > 0 {
                format!(", {}", output::count(warnings as u64, "warning"))
            } else {
                String::new()
            },
            if r.truncated { " (truncated)" } else { "" },
            r.findings
                .iter()
                .find(|f| !f.kind.is_warning())
                .map(ToString::to_string)
                .unwrap_or_default()
        )
    }
}

/// Prints what a writing surgery did: what changed, what it dropped, where it wrote,
/// notes, and check's verdict on the result, last. Exit 0: the operation was written
/// (the verdict says whether the result is clean).
fn render(t: &SurgeryTarget, d: &Done) -> Result<ExitCode> {
    let mut out = output::stdout();
    if t.json {
        let findings: Vec<String> = d
            .check
            .findings
            .iter()
            .take(20)
            .map(ToString::to_string)
            .collect();
        output::json(
            &mut out,
            &json!({"format": d.format.name(), "op": d.op, "src": t.src.display().to_string(),
                "dst": d.dst.display().to_string(), "in_place": t.in_place,
                "message": d.message, "dropped": d.dropped, "notes": d.notes,
                "kept_journal": d.kept_journal.as_ref().map(|p| p.display().to_string()),
                "freelist_abandoned": d.freelist_abandoned,
                "check": {"ok": d.check.is_ok(), "verdict": verdict_line(&d.check),
                    "findings": findings, "truncated": d.check.truncated}}),
        )?;
    } else {
        let mut rows = vec![vec![d.op.to_owned(), d.message.clone()]];
        if d.dropped.is_empty() {
            rows.push(vec!["drops".to_owned(), "nothing".to_owned()]);
        }
        for x in &d.dropped {
            rows.push(vec!["drops".to_owned(), x.clone()]);
        }
        rows.push(vec!["wrote".to_owned(), d.dst.display().to_string()]);
        if let Some(k) = &d.kept_journal {
            rows.push(vec![
                "journal".to_owned(),
                format!("the old journal's bytes are kept as {}", k.display()),
            ]);
        }
        for n in &d.notes {
            rows.push(vec!["note".to_owned(), n.clone()]);
        }
        rows.push(vec!["check".to_owned(), verdict_line(&d.check)]);
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn validate(a: &FileArgs) -> Result<ExitCode> {
    if detect(&a.file)? == Format::Native {
        return validate_untorn(a);
    }
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

/// The fields `--fields name:value,...` names: bbolt's (pageSize, root, freelist,
/// pgid) and untorn's (root, freelist, pgid = the high-water mark, txid).
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields {
    page_size: Option<u32>,
    root: Option<u64>,
    freelist: Option<u64>,
    pgid: Option<u64>,
    txid: Option<u64>,
}

fn parse_fields(s: &str) -> Result<Fields> {
    let mut u = Fields::default();
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
            "txid" => u.txid = Some(v),
            other => {
                bail!(
                    "unknown meta field {other:?} (expected pageSize, root, freelist, pgid, txid)"
                )
            }
        }
    }
    if u == Fields::default() {
        bail!("--fields names no field");
    }
    Ok(u)
}

fn update(a: &MetaUpdateArgs) -> Result<ExitCode> {
    let fields = parse_fields(&a.fields)?;
    match detect(&a.target.src)? {
        Format::Native => {
            if fields.page_size.is_some() {
                bail!("an untorn file's page size cannot be changed (pageSize is a bbolt field)");
            }
            let u = native::MetaUpdate {
                root: fields.root,
                freelist: fields.freelist,
                high_water: fields.pgid,
                txid: fields.txid,
            };
            let force = a.target.force;
            apply_native(&a.target, "meta update", false, |d, j| {
                native::meta_update(d, j, &u, force)
            })
        }
        Format::Bbolt => {
            let Some(meta) = a.meta else {
                bail!("give --meta 0 or --meta 1 (the bbolt meta page to update)");
            };
            if meta > 1 {
                bail!("--meta must be 0 or 1");
            }
            if fields.txid.is_some() {
                bail!("txid is not a field `meta update` sets in a bbolt file");
            }
            let u = MetaUpdate {
                page_size: fields.page_size,
                root: fields.root,
                freelist: fields.freelist,
                pgid: fields.pgid,
            };
            apply(&a.target, "meta update", String::new(), |s, d| {
                surgery::meta_update(s, d, meta, &u)
            })
        }
    }
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
        assert_eq!(parse_fields("txid:3").unwrap().txid, Some(3));
        assert!(parse_fields("").is_err());
        assert!(parse_fields("bogus:3").is_err());
        assert!(parse_fields("root").is_err());
        assert!(parse_fields("root:x").is_err());
    }
}
