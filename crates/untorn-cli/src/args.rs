//! The raw command line, as clap parses it. Validation into configs happens in `cmd`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Inspect, check, salvage and repair untorn and bbolt (etcd) database files.
///
/// Every command takes the database file first; the format is detected by its magic.
/// Commands that only read open the file read-only (a journal is replayed in memory,
/// never written). bbolt files are never written in place except by `surgery
/// --in-place`.
#[derive(Debug, Parser)]
#[command(name = "untorn", version, about, propagate_version = true)]
#[command(
    after_help = "Examples:\n  untorn check app.untorn\n  untorn check member/snap/db\n  untorn dump app.untorn > app.jsonl\n  untorn load new.untorn < app.jsonl\n  untorn salvage member/snap/db fixed.db"
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
    /// Copy everything that can be trusted from a damaged SRC into a new file DST and
    /// report what was lost. SRC is never modified.
    ///
    /// Exit status: 0 nothing lost, 1 something lost (the report says what and where),
    /// 2 nothing could be salvaged, or usage / I/O error.
    #[command(
        after_help = "Examples:\n  untorn salvage member/snap/db fixed.db\n  untorn salvage member/snap/db fixed.untorn --to untorn --json\n  untorn salvage app.untorn copy.untorn"
    )]
    Salvage(SalvageArgs),
    /// etcd's view of an etcd backend (a data dir's member/snap/db or an `etcdctl
    /// snapshot save` file): keys, values and revisions as etcdctl would answer, read
    /// from the file without a server, and etcd's invariants.
    #[command(
        after_help = "Examples:\n  untorn etcd keys member/snap/db --prefix /registry/pods/\n  untorn etcd get member/snap/db /registry/pods/ns-1/p --rev 120\n  untorn etcd history member/snap/db /registry/pods/ns-1/p\n  untorn etcd revisions member/snap/db\n  untorn etcd check snapshot.db"
    )]
    Etcd(EtcdArgs),
    /// Expert repairs of bbolt files (bbolt 1.4 `bbolt surgery` semantics). Works on a
    /// copy (--output DST) unless --in-place is given.
    #[command(
        after_help = "Example (the page-cycle repair):\n  untorn surgery clear-page-elements db --page 1538 --from-index 28 --to-index 29 --output step1.db\n  untorn surgery freelist rebuild step1.db --output fixed.db"
    )]
    Surgery(SurgeryArgs),
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

/// The format `salvage` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SalvageTo {
    /// A fresh bbolt file (same page size and freelist mode as SRC).
    Bbolt,
    /// A new untorn database.
    Untorn,
}

/// Whether bbolt salvage may use leaf pages the tree no longer reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Orphans {
    /// Only when SRC's freelist is synced (free pages can be told from lost ones).
    Auto,
    /// Also without a synced freelist: stale pages may bring deleted keys back.
    Always,
    /// Only what the tree reaches.
    Never,
}

#[derive(Debug, Args)]
pub struct SalvageArgs {
    /// The damaged database file (read only).
    pub src: PathBuf,
    /// The new file to write.
    pub dst: PathBuf,
    /// Output format (default: bbolt for a bbolt SRC, untorn for an untorn SRC).
    #[arg(long, value_enum)]
    pub to: Option<SalvageTo>,
    /// bbolt SRC: whether unreachable leaf pages may fill lost key ranges.
    #[arg(long, value_enum, default_value_t = Orphans::Auto)]
    pub orphans: Orphans,
    /// Replace DST if it exists.
    #[arg(long)]
    pub force: bool,
    /// Salvage as an etcd backend even when its bucket names do not say so (etcd is
    /// detected from its buckets otherwise).
    #[arg(long)]
    pub etcd: bool,
    /// etcd: keys whose newest revision was lost keep their older revisions (etcd
    /// serves the older value: `keep`, the default) or are removed (`drop`).
    #[arg(long, value_enum, default_value_t = EtcdStale::Keep)]
    pub etcd_stale: EtcdStale,
    /// etcd: the write-ahead log directory whose raft entries name the keys of lost
    /// revisions (default: `member/wal` next to a data dir's `member/snap/db`).
    #[arg(long, value_name = "DIR")]
    pub wal: Option<PathBuf>,
    /// Key/values per transaction when writing an untorn DST.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub batch: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SurgeryArgs {
    #[command(subcommand)]
    pub op: SurgeryOp,
}

/// Where a surgery writes: a copy, or SRC itself.
#[derive(Debug, Args)]
pub struct SurgeryTarget {
    /// The bbolt file to operate on.
    pub src: PathBuf,
    /// Write the result here (SRC is copied first and left unchanged).
    #[arg(
        long,
        short = 'o',
        value_name = "DST",
        required_unless_present = "in_place",
        conflicts_with = "in_place"
    )]
    pub output: Option<PathBuf>,
    /// Modify SRC itself.
    #[arg(long)]
    pub in_place: bool,
    /// Replace DST if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SurgeryOp {
    /// Replace the newer meta page with a copy of the older one (loses the last commit).
    #[command(after_help = "Example:\n  untorn surgery revert-meta db --output reverted.db")]
    RevertMeta(SurgeryTarget),
    /// Copy page --from-page (with its overflow pages) over page --to-page.
    #[command(
        after_help = "Example:\n  untorn surgery copy-page db --from-page 12 --to-page 40 --output fixed.db"
    )]
    CopyPage(CopyPageArgs),
    /// Remove every element of a branch or leaf page.
    #[command(after_help = "Example:\n  untorn surgery clear-page db --page 40 --output fixed.db")]
    ClearPage(ClearPageArgs),
    /// Remove elements [--from-index, --to-index) of a branch or leaf page.
    ///
    /// Clearing branch elements makes pages unreachable: the freelist is then abandoned
    /// in both metas; run `untorn surgery freelist rebuild` afterwards.
    #[command(
        after_help = "Example:\n  untorn surgery clear-page-elements db --page 1538 --from-index 28 --to-index 29 --output step1.db"
    )]
    ClearPageElements(ClearPageElementsArgs),
    /// Abandon or rebuild the freelist.
    #[command(
        after_help = "Examples:\n  untorn surgery freelist abandon db --output a.db\n  untorn surgery freelist rebuild a.db --output b.db"
    )]
    Freelist(FreelistArgs),
    /// Validate or update the meta pages.
    #[command(
        after_help = "Examples:\n  untorn surgery meta validate db\n  untorn surgery meta update db --meta 0 --fields root:16,pgid:64 --output fixed.db"
    )]
    Meta(MetaArgs),
}

#[derive(Debug, Args)]
pub struct CopyPageArgs {
    #[command(flatten)]
    pub target: SurgeryTarget,
    /// The page to copy.
    #[arg(long, value_name = "N")]
    pub from_page: u64,
    /// The page to overwrite.
    #[arg(long, value_name = "M")]
    pub to_page: u64,
}

#[derive(Debug, Args)]
pub struct ClearPageArgs {
    #[command(flatten)]
    pub target: SurgeryTarget,
    /// The branch or leaf page to clear.
    #[arg(long, value_name = "N")]
    pub page: u64,
}

#[derive(Debug, Args)]
pub struct ClearPageElementsArgs {
    #[command(flatten)]
    pub target: SurgeryTarget,
    /// The branch or leaf page.
    #[arg(long, value_name = "N")]
    pub page: u64,
    /// First element to remove (0-based).
    #[arg(long, value_name = "A")]
    pub from_index: usize,
    /// Element after the last one to remove; -1 means through the last element.
    #[arg(long, value_name = "B", allow_negative_numbers = true)]
    pub to_index: i64,
}

#[derive(Debug, Args)]
pub struct FreelistArgs {
    #[command(subcommand)]
    pub op: FreelistOp,
}

#[derive(Debug, Subcommand)]
pub enum FreelistOp {
    /// Mark the freelist as not synced in both metas (bbolt rebuilds it on open).
    #[command(after_help = "Example:\n  untorn surgery freelist abandon db --output a.db")]
    Abandon(SurgeryTarget),
    /// Write a freelist of every unreachable page (only for an abandoned freelist and a
    /// tree that checks clean), committed with a new meta.
    #[command(after_help = "Example:\n  untorn surgery freelist rebuild a.db --output b.db")]
    Rebuild(SurgeryTarget),
}

#[derive(Debug, Args)]
pub struct MetaArgs {
    #[command(subcommand)]
    pub op: MetaOp,
}

#[derive(Debug, Subcommand)]
pub enum MetaOp {
    /// Validate both meta pages (read only). Exit 1 if either is invalid.
    #[command(after_help = "Example:\n  untorn surgery meta validate db")]
    Validate(FileArgs),
    /// Set fields of one meta page and recompute its checksum.
    #[command(
        after_help = "Example:\n  untorn surgery meta update db --meta 1 --fields root:16,freelist:17,pgid:64 --output fixed.db"
    )]
    Update(MetaUpdateArgs),
}

#[derive(Debug, Args)]
pub struct MetaUpdateArgs {
    #[command(flatten)]
    pub target: SurgeryTarget,
    /// The meta page to update (0 or 1).
    #[arg(long, alias = "meta-page", value_name = "0|1")]
    pub meta: u64,
    /// Comma-separated NAME:VALUE pairs; names: pageSize (or page_size), root,
    /// freelist, pgid.
    #[arg(long, value_name = "NAME:VALUE,...")]
    pub fields: String,
}

/// What salvage does with etcd keys whose newest revision was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EtcdStale {
    /// Keep their older revisions (etcd serves the older value).
    Keep,
    /// Remove every revision of those keys.
    Drop,
}

#[derive(Debug, Args)]
pub struct EtcdArgs {
    #[command(subcommand)]
    pub op: EtcdOp,
}

/// Options every `etcd` command takes.
#[derive(Debug, Args)]
pub struct EtcdCommon {
    /// The etcd backend file (read only).
    pub file: PathBuf,
    /// Read it as etcd's even when its bucket names do not say so.
    #[arg(long)]
    pub etcd: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum EtcdOp {
    /// Every live key (what `etcdctl get "" --from-key --keys-only` answers).
    Keys {
        #[command(flatten)]
        common: EtcdCommon,
        /// Only keys starting with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// At this revision instead of the newest.
        #[arg(long)]
        rev: Option<i64>,
    },
    /// The value of KEY (what `etcdctl get KEY [--rev N]` answers); exit 1 if none.
    Get {
        #[command(flatten)]
        common: EtcdCommon,
        /// The key.
        key: String,
        /// At this revision instead of the newest.
        #[arg(long)]
        rev: Option<i64>,
    },
    /// Every revision of KEY in the file, oldest first (deletes included).
    History {
        #[command(flatten)]
        common: EtcdCommon,
        /// The key.
        key: String,
    },
    /// The revision range, the compaction point and gaps.
    Revisions {
        #[command(flatten)]
        common: EtcdCommon,
    },
    /// etcd's invariants; the snapshot hash of an `etcdctl snapshot save` file; damage
    /// of the bbolt tree in etcd's terms. Exit status: 0 clean, 1 findings, 2 not run.
    Check {
        #[command(flatten)]
        common: EtcdCommon,
        /// Keep at most this many findings.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        max_findings: usize,
    },
}
