//! One module per command group; each validates its raw args into a config, then runs it.

mod bench;
mod check;
mod copy;
mod dump;
mod etcd;
mod info;
mod inspect;
mod kv;
mod map;
mod recover;
mod salvage;
mod source;
mod surgery;
mod tools;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Recover(a) => recover::run(a),
        Command::Info(a) => info::run(a),
        Command::Check(a) => check::run(a),
        Command::Stats(a) => inspect::stats(a),
        Command::Pages(a) => inspect::pages(a),
        Command::Page(a) => inspect::page(a),
        Command::PageItem(a) => inspect::page_item(a),
        Command::Map(a) => map::run(a),
        Command::Buckets(a) => kv::buckets(a),
        Command::Keys(a) => kv::keys(a),
        Command::Get(a) => kv::get(a),
        Command::Put(a) => kv::put(a),
        Command::Delete(a) => kv::delete(a),
        Command::Dump(a) => dump::dump(a),
        Command::Load(a) => dump::load(a),
        Command::Salvage(a) => salvage::run(a),
        Command::Backup(a) => copy::backup(a),
        Command::Compact(a) => copy::compact(a),
        Command::Etcd(a) => etcd::run(a),
        Command::Surgery(a) => surgery::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Completions(a) => tools::completions(a),
        Command::Man(a) => tools::man(a),
    }
}
