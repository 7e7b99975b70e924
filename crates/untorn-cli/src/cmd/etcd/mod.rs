//! `untorn etcd keys|get|history|revisions|check`: etcd's view of an etcd backend file,
//! read without a server (see `untorn_etcd`), and [`salvage`], the etcd part of
//! `untorn salvage`. The library decides what a file holds and what is wrong with it;
//! these modules render it.

mod check;
mod read;
pub mod salvage;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use untorn_etcd::Opened;

use crate::args::{EtcdArgs, EtcdCommon, EtcdOp};
use crate::output;

pub fn run(a: EtcdArgs) -> Result<ExitCode> {
    let mut out = output::stdout();
    let code = match a.op {
        EtcdOp::Keys {
            common,
            prefix,
            rev,
        } => read::keys(&mut out, &common, prefix.as_deref(), rev)?,
        EtcdOp::Get { common, key, rev } => read::get(&mut out, &common, &key, rev)?,
        EtcdOp::History { common, key } => read::history(&mut out, &common, &key)?,
        EtcdOp::Revisions { common } => read::revisions(&mut out, &common)?,
        EtcdOp::Check {
            common,
            max_findings,
        } => check::run(&mut out, &common, max_findings)?,
    };
    out.flush()?;
    Ok(code)
}

/// Opens the file as etcd's backend; a damaged file is read through salvage, and the
/// user is told so on stderr.
fn open(c: &EtcdCommon) -> Result<Opened> {
    let o = untorn_etcd::open_with(&c.file, c.etcd)
        .with_context(|| format!("cannot read {} as etcd", c.file.display()))?;
    if let Some(d) = &o.damaged {
        eprintln!(
            "untorn: {} is damaged ({}); reading what verifies — run \
             `untorn etcd check` and `untorn salvage`",
            c.file.display(),
            crate::output::count(d.lost.len() as u64, "lost subtree")
        );
    }
    Ok(o)
}
