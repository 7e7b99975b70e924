//! The raw command line, as clap parses it. Validation into configs happens in `cmd`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Inspect, check and edit untorn database files.
///
/// Every command takes the database file first. Commands that only read open the file
/// read-only (a journal is replayed in memory, never written).
#[derive(Debug, Parser)]
#[command(name = "untorn", version, about, propagate_version = true)]
#[command(
    after_help = "Examples:\n  untorn check app.untorn\n  untorn dump app.untorn > app.jsonl\n  untorn load new.untorn < app.jsonl"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print facts about a database: page size, txid, high-water mark, metas, journal.
    #[command(after_help = "Example:\n  untorn info app.untorn --json")]
    Info(InfoArgs),
    /// Verify every page, reference, key bound, bucket header, the freelist and both metas.
    ///
    /// Exit status: 0 clean (warnings allowed), 1 findings, 2 the file could not be checked.
    #[command(
        after_help = "Examples:\n  untorn check app.untorn\n  untorn check app.untorn --json --max-findings 50\n  untorn check app.untorn --from-page 1929"
    )]
    Check(CheckArgs),
    /// Space and shape statistics: pages by kind, free and leaked pages, depth, fill factor.
    #[command(after_help = "Example:\n  untorn stats app.untorn")]
    Stats(FileArgs),
    /// One row per page: id, type, items, overflow pages, state.
    #[command(after_help = "Example:\n  untorn pages app.untorn | grep leaked")]
    Pages(FileArgs),
    /// Decode pages: header, verification result and elements.
    #[command(
        after_help = "Examples:\n  untorn page app.untorn 3\n  untorn page app.untorn 0 1 --hex"
    )]
    Page(PageArgs),
    /// Draw the file as an SVG: one cell per page, coloured by kind and state.
    #[command(after_help = "Example:\n  untorn map app.untorn --svg app.svg")]
    Map(MapArgs),
    /// List buckets: top-level ones, or the sub-buckets of BUCKET...
    #[command(
        after_help = "Examples:\n  untorn buckets app.untorn\n  untorn buckets app.untorn users"
    )]
    Buckets(BucketsArgs),
    /// List the keys of a bucket (BUCKET... is a path of nested buckets).
    #[command(after_help = "Example:\n  untorn keys app.untorn users")]
    Keys(KeysArgs),
    /// Print the value of KEY in BUCKET... (exit 1 if there is none).
    #[command(
        after_help = "Examples:\n  untorn get app.untorn users alice\n  untorn get app.untorn users logins 0000000000000001 --hex"
    )]
    Get(KvArgs),
    /// Set KEY to VALUE in BUCKET..., creating the buckets if needed.
    #[command(after_help = "Example:\n  untorn put app.untorn users alice admin")]
    Put(KvArgs),
    /// Delete KEY from BUCKET... (exit 1 if it did not exist).
    #[command(after_help = "Example:\n  untorn delete app.untorn users alice")]
    Delete(KvArgs),
    /// Write every bucket and key/value as JSON lines (see docs/check.md for the format).
    #[command(
        after_help = "Examples:\n  untorn dump app.untorn > app.jsonl\n  untorn dump app.untorn --format hex | head"
    )]
    Dump(DumpArgs),
    /// Read JSON lines as written by `dump` from stdin into FILE (created if missing).
    #[command(after_help = "Example:\n  untorn dump old.untorn | untorn load new.untorn")]
    Load(LoadArgs),
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The database file.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub common: FileArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: FileArgs,
    /// Keep at most N findings (more are counted as truncated).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_findings: usize,
    /// Check only the subtree rooted at page ID (no leak or freelist accounting).
    #[arg(long, value_name = "ID")]
    pub from_page: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// The database file.
    pub file: PathBuf,
    /// Page ids to decode.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<u64>,
    /// Also print a hex dump of each page.
    #[arg(long)]
    pub hex: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MapArgs {
    #[command(flatten)]
    pub common: FileArgs,
    /// Where to write the SVG.
    #[arg(long, value_name = "OUT")]
    pub svg: PathBuf,
    /// Cells per row.
    #[arg(long, default_value_t = 64)]
    pub columns: u32,
}

#[derive(Debug, Args)]
pub struct BucketsArgs {
    /// The database file.
    pub file: PathBuf,
    /// Path of nested buckets (empty: top level).
    pub bucket: Vec<String>,
    /// Names and arguments are hex.
    #[arg(long)]
    pub hex: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The database file.
    pub file: PathBuf,
    /// Path of nested buckets.
    #[arg(required = true)]
    pub bucket: Vec<String>,
    /// Names, keys and arguments are hex.
    #[arg(long)]
    pub hex: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `get`/`delete`: BUCKET... KEY; `put`: BUCKET... KEY VALUE. Split in `cmd`.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// The database file.
    pub file: PathBuf,
    /// BUCKET... KEY (and VALUE for put).
    #[arg(required = true, num_args = 2.., value_name = "ARG")]
    pub args: Vec<String>,
    /// Bucket names, key and value are given (and printed) as hex.
    #[arg(long)]
    pub hex: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    /// UTF-8 strings where the bytes are valid UTF-8, `{"hex": ".."}` otherwise.
    Text,
    /// `{"hex": ".."}` for every name, key and value.
    Hex,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The database file.
    pub file: PathBuf,
    /// How bytes are written.
    #[arg(long, value_enum, default_value_t = DumpFormat::Text)]
    pub format: DumpFormat,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The database file (created if missing).
    pub file: PathBuf,
    /// Lines per transaction.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub batch: usize,
}
