//! The entry point shared by the `bbolt_check` fuzz target and the stable
//! mutation test: every reader over arbitrary bytes, which must never panic.

use crate::check::{check_file, pages_of, CheckOptions};
use crate::file::BoltFile;
use crate::salvage::{salvage_file, OrphanPolicy, SalvageOptions};

/// What one run observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Whether a valid meta was found.
    pub opened: bool,
    /// Findings of the check.
    pub findings: usize,
    /// Items the dump yielded before its end or first error.
    pub dumped: usize,
    /// Whether salvage produced a file whose own check is clean (true when
    /// salvage did not run). The fuzz target asserts it: it is the oracle.
    pub writer_clean: bool,
}

/// Parses `data` as a bbolt file and runs check, pages, stats, dump, lookups,
/// salvage (into memory, then through the writer, then check on the result).
/// Never panics on any input.
pub fn run_all(data: &[u8]) -> Outcome {
    let mut out = Outcome {
        writer_clean: true,
        ..Outcome::default()
    };
    let Ok(file) = BoltFile::from_bytes(data.to_vec()) else {
        return out;
    };
    out.opened = true;
    let report = check_file(
        &file,
        CheckOptions {
            max_findings: 64,
            ..CheckOptions::default()
        },
    );
    let _ = pages_of(&file);
    let _ = crate::info(&file);
    let _ = crate::stats(&file);
    let _ = crate::page(&file, file.meta().root);
    out.findings = report.findings.len();
    for item in crate::dump(&file) {
        out.dumped += 1;
        if item.is_err() {
            break;
        }
    }
    let _ = crate::buckets(&file, &[]);
    let _ = crate::get(&file, &[b"alpha".to_vec()], b"key0000001");
    let salvaged = salvage_file(
        file,
        &SalvageOptions {
            orphans: OrphanPolicy::Always,
            ..SalvageOptions::default()
        },
    );
    if let Ok(s) = salvaged {
        let opts = crate::writer::WriteOptions {
            page_size: s.report.page_size,
            ..Default::default()
        };
        if let Ok((image, _)) = crate::writer::build_image(&s.data, &opts) {
            // What the writer produces must check clean.
            out.writer_clean = match BoltFile::from_bytes(image) {
                Ok(f) => check_file(&f, CheckOptions::default()).is_ok(),
                Err(_) => false,
            };
        }
    }
    out
}
