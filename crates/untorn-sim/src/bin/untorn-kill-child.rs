//! Child process of the real-process kill test: commits in a loop on a real file,
//! printing each acknowledged commit number, until it is killed.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // `--verify <path> <acked>`: the parent's check, by hand (for debugging a failure).
    if let [flag, path, acked] = args.as_slice() {
        if flag == "--verify" {
            let acked = acked.to_str().and_then(|a| a.parse().ok()).unwrap_or(0);
            return match untorn_sim::kill::verify(&PathBuf::from(path), acked) {
                Ok(last) => {
                    println!("ok: last commit {last}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("verify: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
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
