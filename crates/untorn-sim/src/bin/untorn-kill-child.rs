//! Child process of the real-process kill test: commits in a loop on a real file,
//! printing each acknowledged commit number, until it is killed.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: untorn-kill-child <database path>");
        return ExitCode::from(2);
    };
    match untorn_sim::kill::child_main(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("untorn-kill-child: {e}");
            ExitCode::FAILURE
        }
    }
}
