//! Writing results: a buffered stdout whose errors (a closed pipe) propagate, aligned
//! tables for people, and the JSON shapes of reports.

use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};

use serde::Serialize;
use untorn::unstable::report::{Finding, Report};

/// Buffered, locked stdout.
pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::new(io::stdout().lock())
}

/// Whether progress bars may be drawn (stderr is a terminal).
pub fn interactive() -> bool {
    io::stderr().is_terminal()
}

/// `n` and the noun, singular or plural: "1 bucket", "2 buckets", "0 entries".
pub use untorn::unstable::report::count;

/// Writes one JSON document and a newline.
pub fn json<T: Serialize>(out: &mut impl Write, v: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Rows of cells printed with every column padded to its widest cell (the last column
/// is not padded).
pub fn table(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&width).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(super::count(1, "bucket"), "1 bucket");
        assert_eq!(super::count(2, "bucket"), "2 buckets");
        assert_eq!(super::count(0, "finding"), "0 findings");
        assert_eq!(super::count(1, "entry"), "1 entry");
        assert_eq!(super::count(3, "entry"), "3 entries");
    }
}

/// One finding in `check --json`.
#[derive(Debug, Serialize)]
pub struct JsonFinding {
    /// Its index in `findings`.
    pub id: usize,
    pub kind: &'static str,
    pub page: Option<u64>,
    pub path: Vec<u64>,
    pub message: String,
    pub warning: bool,
    /// The `id` of the root cause this finding is a consequence of (null: it is a
    /// root cause).
    pub root_cause: Option<usize>,
}

impl JsonFinding {
    fn new(id: usize, f: &Finding) -> Self {
        JsonFinding {
            id,
            kind: f.kind.as_str(),
            page: f.page,
            path: f.path.clone(),
            message: f.message.clone(),
            warning: f.kind.is_warning(),
            root_cause: f.cause,
        }
    }
}

/// The object `check --json` prints (schema in docs/check.md).
#[derive(Debug, Serialize)]
pub struct JsonReport {
    /// `"untorn"` or `"bbolt"`.
    pub format: &'static str,
    pub ok: bool,
    /// Findings that are root causes (the rest name theirs in `root_cause`).
    pub root_causes: usize,
    pub findings: Vec<JsonFinding>,
    pub truncated: bool,
    pub pages_checked: u64,
    pub keys_checked: u64,
    pub buckets_checked: u64,
    pub high_water_mark: u64,
    pub txid: u64,
    /// "snapshot" (through the engine, journal included) or "data_file" (raw file,
    /// used when the engine cannot open it, and always for bbolt files).
    pub source: &'static str,
    /// Why the engine could not open the file, when `source` is "data_file".
    pub open_error: Option<String>,
}

impl JsonReport {
    pub fn new(
        r: &Report,
        format: crate::backend::Format,
        source: &'static str,
        open_error: Option<String>,
    ) -> Self {
        JsonReport {
            format: format.name(),
            ok: r.is_ok(),
            root_causes: r.findings.iter().filter(|f| f.cause.is_none()).count(),
            findings: r
                .findings
                .iter()
                .enumerate()
                .map(|(i, f)| JsonFinding::new(i, f))
                .collect(),
            truncated: r.truncated,
            pages_checked: r.pages_checked,
            keys_checked: r.keys_checked,
            buckets_checked: r.buckets_checked,
            high_water_mark: r.high_water_mark,
            txid: r.txid,
            source,
            open_error,
        }
    }
}
