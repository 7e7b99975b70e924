//! `untorn`: inspect, check, salvage and repair untorn and bbolt database files.
//!
//! The binary is thin: [`args`] parses the command line into raw structs, each command
//! module validates them into a config and runs it against a [`backend::Backend`]
//! chosen by the file's magic (the engine for untorn files, `untorn-bbolt` for bbolt
//! files, which are never written in place except by `surgery --in-place`). Exit
//! codes: 0 success (for `check`: no findings; `salvage`: nothing lost), 1 findings,
//! "not found" or data lost, 2 could not run (usage, I/O, not a database), with the
//! reason on stderr. The user's reference is `docs/cli.md`.

mod args;
mod backend;
mod cmd;
mod encoding;
mod map;
mod output;

use std::io;
use std::process::ExitCode;

use clap::Parser;

/// Exit code when the command could not do its job (usage, I/O, not a database).
pub const EXIT_ERROR: u8 = 2;
/// Exit code for findings (`check`) or a missing key/bucket (`get`, `delete`, ...).
pub const EXIT_FINDINGS: u8 = 1;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("untorn: {}", message(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes, each said once: a cause whose text an outer message
/// already contains (`I/O error: X` over `X`) is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}

/// Whether the error (anywhere in its chain) is a closed stdout (`untorn dump | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_said_once() {
        let io = io::Error::from_raw_os_error(21);
        let e = anyhow::Error::from(untorn::Error::Io(io)).context("cannot open x");
        let m = message(&e);
        assert_eq!(m.matches("os error 21").count(), 1, "{m}");
        assert!(m.starts_with("cannot open x: I/O error: "), "{m}");
    }
}
