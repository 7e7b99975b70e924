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
    after_help = "Names, keys and values on the command line and in output: the text itself, or\n0x and hex for bytes that are not printable text (0x0000000000000001).\n\nExamples:\n  untorn check app.untorn\n  untorn check member/snap/db\n  untorn dump app.untorn > app.jsonl\n  untorn load new.untorn < app.jsonl\n  untorn salvage member/snap/db fixed.db"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open a database read-write, recover it, and print what recovery did.
    ///
    /// Without --rollback a damaged meta nothing proves older, a foreign or missing
    /// journal, or a damaged journal record is refused (exit 2) with the reason. With
    /// --rollback the newest intact state is opened instead and the report lists exactly
    /// what was discarded; the journal's bytes are kept as FILE.journal.rollback-<secs>.
    #[command(
        after_help = "Examples:\n  untorn recover app.untorn\n  untorn recover app.untorn --rollback --json"
    )]
    Recover(RecoverArgs),
    /// Print facts about a database: page size, txid, high-water mark, metas, journal.
    #[command(after_help = "Example:\n  untorn info app.untorn --json")]
    Info(InfoArgs),
    /// Verify every page, reference, key bound, bucket header, the freelist and both metas.
    ///
    /// Exit status: 0 clean (warnings allowed), 1 findings, 2 the file could not be checked.
    #[command(
        after_help = "Examples:\n  untorn check app.untorn\n  untorn check app.untorn --json --max-findings 50\n  untorn check app.untorn --from-page 3"
    )]
    Check(CheckArgs),
    /// Space and shape statistics: pages by kind, free and leaked pages, depth, fill factor.
    #[command(after_help = "Example:\n  untorn stats app.untorn")]
    Stats(FileArgs),
    /// One row per page: id, type, items, overflow pages, state.
    #[command(after_help = "Example:\n  untorn pages app.untorn | grep leaf")]
    Pages(FileArgs),
    /// Decode pages: header, verification result and elements.
    #[command(
        after_help = "Examples:\n  untorn page app.untorn 3\n  untorn page app.untorn 0 1 --hex"
    )]
    Page(PageArgs),
    /// Decode one element of a page: its key and value (bbolt's `page-item`).
    #[command(
        after_help = "Examples:\n  untorn page-item app.untorn 3 0\n  untorn page-item app.untorn 3 0 --value-only > value.bin"
    )]
    PageItem(PageItemArgs),
    /// Draw the file as SVG or PNG: one cell per page, damage outlined, cycles as arrows.
    ///
    /// Reachable pages are coloured by bucket (or by kind), free, leaked and corrupt
    /// pages by state; page numbers on the left, column offsets on top; `--pages` zooms.
    #[command(
        after_help = "Examples:\n  untorn map app.untorn --svg app.svg\n  untorn map app.untorn --png app.png --pages 0..512\n  untorn map member/snap/db --svg db.svg --color-by kind"
    )]
    Map(MapArgs),
    /// List buckets: top-level ones, or the sub-buckets of BUCKET...
    #[command(
        after_help = "Examples:\n  untorn buckets app.untorn\n  untorn buckets app.untorn users"
    )]
    Buckets(BucketsArgs),
    /// List the keys of a bucket, one per line, in the notation `get` accepts.
    ///
    /// BUCKET... is a path of nested buckets.
    #[command(
        after_help = "Examples:\n  untorn keys app.untorn users\n  untorn keys app.untorn users logins"
    )]
    Keys(KeysArgs),
    /// Print the value of KEY in BUCKET... (exit 1 if there is none).
    #[command(
        override_usage = "untorn get [OPTIONS] <FILE> <BUCKET>... <KEY>",
        after_help = "Examples:\n  untorn get app.untorn users alice\n  untorn get app.untorn users logins 0x0000000000000001 --hex"
    )]
    Get(GetArgs),
    /// Set KEY to VALUE in BUCKET..., creating the buckets if needed.
    #[command(
        override_usage = "untorn put [OPTIONS] <FILE> <BUCKET>... <KEY> <VALUE>",
        after_help = "Examples:\n  untorn put app.untorn users carol admin\n  untorn put app.untorn users logins 0x0000000000000009 0x00ff"
    )]
    Put(PutArgs),
    /// Delete KEY from BUCKET... (exit 1 if it did not exist).
    #[command(
        override_usage = "untorn delete [OPTIONS] <FILE> <BUCKET>... <KEY>",
        after_help = "Example:\n  untorn delete app.untorn users bob"
    )]
    Delete(KvArgs),
    /// Write every bucket and key/value as JSON lines (see docs/check.md for the format).
    #[command(
        after_help = "Examples:\n  untorn dump app.untorn > app.jsonl\n  untorn dump app.untorn --format hex | head\n  untorn dump app.untorn --bucket users logins\n  untorn dump app.untorn --skip-damaged > rescued.jsonl"
    )]
    Dump(DumpArgs),
    /// Read JSON lines as written by `dump` from stdin into FILE (created if missing).
    ///
    /// A bad line is named with what is wrong; a load that commits nothing leaves no
    /// file behind.
    #[command(
        after_help = "Examples:\n  untorn dump app.untorn | untorn load copy.untorn\n  untorn load new.untorn < app.jsonl"
    )]
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
    /// Hot backup: write a consistent copy of the newest committed state of SRC to a new
    /// file DST, a complete database in one file (no journal needed).
    ///
    /// SRC is opened read-only; its journal's commits are included. DST is written under
    /// a temporary name, synced and renamed into place; an existing DST is refused.
    #[command(
        after_help = "Examples:\n  untorn backup app.untorn app-2026-11-30.untorn\n  untorn backup app.untorn copy.untorn --json"
    )]
    Backup(CopyArgs),
    /// Write only the live data of SRC into a new file DST, densely packed (every tree
    /// rebuilt bottom-up, leaves filled close to 100%), and report the sizes before and
    /// after. SRC is never modified; an existing DST is refused.
    #[command(
        after_help = "Examples:\n  untorn compact app.untorn app.compact.untorn\n  untorn compact app.untorn small.untorn --json"
    )]
    Compact(CopyArgs),
    /// etcd's view of an etcd backend (a data dir's member/snap/db or an `etcdctl
    /// snapshot save` file): keys, values and revisions as etcdctl would answer, read
    /// from the file without a server, and etcd's invariants.
    #[command(
        after_help = "Examples:\n  untorn etcd keys member/snap/db --prefix /registry/pods/\n  untorn etcd get member/snap/db /registry/pods/ns-1/p --rev 120\n  untorn etcd history member/snap/db /registry/pods/ns-1/p\n  untorn etcd revisions member/snap/db\n  untorn etcd check snapshot.db"
    )]
    Etcd(EtcdArgs),
    /// Expert repairs of untorn and bbolt files (bbolt 1.4 `bbolt surgery` semantics).
    /// Works on a copy (--output DST) unless --in-place is given; says what each operation
    /// drops and ends with check's verdict on the result.
    #[command(
        after_help = "Example (the page-cycle repair: page and element from `untorn check`):\n  untorn surgery clear-page-elements db --page 73 --from-index 28 --to-index 29 --output step1.db\n  untorn surgery freelist rebuild step1.db --output fixed.db"
    )]
    Surgery(SurgeryArgs),
    /// Measure write and read throughput on a scratch database (bbolt's `bench`).
    #[command(
        after_help = "Examples:\n  untorn bench\n  untorn bench --count 100000 --batch-size 1000 --write-mode rnd --read-mode rnd --json"
    )]
    Bench(BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  untorn completions bash > untorn.bash\n  untorn completions zsh > _untorn"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    #[command(after_help = "Examples:\n  untorn man > untorn.1\n  untorn man --out-dir man/")]
    Man(ManArgs),
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
pub struct RecoverArgs {
    #[command(flatten)]
    pub common: FileArgs,
    /// Accept losing what cannot be recovered: open at the newest intact state and report
    /// what was discarded.
    #[arg(long)]
    pub rollback: bool,
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

/// What a reachable page's cell colour says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorBy {
    /// The bucket the page belongs to (branch pages drawn darker).
    Bucket,
    /// The page kind (meta, branch, leaf, overflow, freelist).
    Kind,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("out").required(true).multiple(true).args(["svg", "png"])))]
pub struct MapArgs {
    #[command(flatten)]
    pub common: FileArgs,
    /// Write an SVG here.
    #[arg(long, value_name = "OUT")]
    pub svg: Option<PathBuf>,
    /// Write a PNG here.
    #[arg(long, value_name = "OUT")]
    pub png: Option<PathBuf>,
    /// Draw only pages A..B (B exclusive; `A..` to the end).
    #[arg(long, value_name = "A..B")]
    pub pages: Option<String>,
    /// Cells per row (default: about as many rows as columns).
    #[arg(long, value_name = "N")]
    pub columns: Option<u32>,
    /// Colour reachable pages by bucket or by kind.
    #[arg(long, value_enum, default_value_t = ColorBy::Bucket)]
    pub color_by: ColorBy,
}

#[derive(Debug, Args)]
pub struct PageItemArgs {
    /// The database file.
    pub file: PathBuf,
    /// The page id.
    #[arg(value_name = "PAGE")]
    pub page: u64,
    /// The element's index in the page (0-based).
    #[arg(value_name = "INDEX")]
    pub index: usize,
    /// Print only the key (raw bytes, or hex with --hex).
    #[arg(long, conflicts_with = "value_only")]
    pub key_only: bool,
    /// Print only the value (raw bytes, or hex with --hex).
    #[arg(long)]
    pub value_only: bool,
    /// Print bytes as 0x-prefixed hex.
    #[arg(long)]
    pub hex: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Key order of a benchmark phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchOrder {
    /// Ascending keys.
    Seq,
    /// Keys in a random (seeded) order.
    Rnd,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Keys to write, then read.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub count: u64,
    /// Keys per write transaction.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch_size: u64,
    /// Key size in bytes (at least 8).
    #[arg(long, value_name = "BYTES", default_value_t = 8)]
    pub key_size: usize,
    /// Value size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 32)]
    pub value_size: usize,
    /// Write order.
    #[arg(long, value_enum, default_value_t = BenchOrder::Seq)]
    pub write_mode: BenchOrder,
    /// Read order.
    #[arg(long, value_enum, default_value_t = BenchOrder::Seq)]
    pub read_mode: BenchOrder,
    /// The scratch database (default: a temporary file, removed afterwards).
    #[arg(long, value_name = "FILE")]
    pub path: Option<PathBuf>,
    /// Commit without syncing (`Durability::None`).
    #[arg(long)]
    pub no_sync: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write untorn.1 and one page per command (untorn-check.1, ...) here instead of
    /// printing untorn.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BucketsArgs {
    /// The database file.
    pub file: PathBuf,
    /// Path of nested buckets (empty: top level).
    #[arg(value_name = "BUCKET")]
    pub bucket: Vec<String>,
    /// Print every name as 0x-prefixed hex.
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
    #[arg(required = true, value_name = "BUCKET")]
    pub bucket: Vec<String>,
    /// Print every key as 0x-prefixed hex.
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
    /// The bucket path, then the key: text, or 0x and hex.
    #[arg(required = true, num_args = 2.., value_names = ["BUCKET", "KEY"])]
    pub args: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `put`: BUCKET... KEY VALUE.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The database file.
    pub file: PathBuf,
    /// The bucket path, the key, then the value: text, or 0x and hex.
    #[arg(required = true, num_args = 3.., value_names = ["BUCKET", "KEY", "VALUE"])]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub kv: KvArgs,
    /// Print the value as 0x-prefixed hex.
    #[arg(long)]
    pub hex: bool,
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
    /// Dump only this bucket (and what is nested in it): its path, one name per value
    /// (`--bucket users logins`).
    #[arg(long, value_name = "NAME", num_args = 1..)]
    pub bucket: Vec<String>,
    /// Continue past damaged pages: dump every key the newest commit still reaches
    /// through pages that verify, and list the skipped key ranges on stderr (exit 1).
    #[arg(long)]
    pub skip_damaged: bool,
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
pub struct CopyArgs {
    /// The untorn database to copy (opened read-only).
    pub src: PathBuf,
    /// The new file to write (must not exist).
    pub dst: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// Replace DST if it exists (`meta update` of an untorn file: also write a result
    /// that fails check).
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
    /// untorn SRC: memory salvage may use, in MiB (its buffers, page index and sort;
    /// candidates beyond it are sorted in runs on a temporary file). Too small for the
    /// page index of SRC is an error that names the size needed.
    #[arg(long, value_name = "MiB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=(1 << 40)))]
    pub memory: u64,
    /// untorn SRC: directory for salvage's temporary files (default: DST's directory).
    /// They are removed when salvage ends, on success and on error.
    #[arg(long, value_name = "DIR")]
    pub tmp: Option<PathBuf>,
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
    /// The database file to operate on (untorn or bbolt).
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
    /// Replace DST if it exists (`meta update` of an untorn file: also write a result
    /// that fails check).
    #[arg(long)]
    pub force: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SurgeryOp {
    /// Make the older meta the file's state (loses the commits after it).
    ///
    /// bbolt: the newer meta page is replaced by a copy of the older one. untorn: both
    /// slots are rewritten to the older (or the only valid) meta and the journal is reset
    /// to it; the old journal's bytes are kept as `<journal>.rollback-<unix-seconds>`.
    #[command(
        after_help = "Examples:\n  untorn surgery revert-meta db --output reverted.db\n  untorn surgery revert-meta app.untorn --output reverted.untorn"
    )]
    RevertMeta(SurgeryTarget),
    /// Copy page --from-page (with its overflow pages) over page --to-page.
    ///
    /// untorn: the copy is re-encoded as page --to-page of its tree and every ancestor is
    /// re-sealed up to the meta (a page copied over itself is accepted as it is now).
    #[command(
        after_help = "Examples:\n  untorn surgery copy-page db --from-page 12 --to-page 40 --output fixed.db\n  untorn surgery copy-page app.untorn --from-page 3 --to-page 3 --output resealed.untorn"
    )]
    CopyPage(CopyPageArgs),
    /// Remove every element of a branch or leaf page.
    ///
    /// untorn: the page's parent stops referencing it (a parent left empty goes too; a
    /// tree root leaves its bucket empty); its contents need not verify.
    #[command(
        after_help = "Examples:\n  untorn surgery clear-page db --page 40 --output fixed.db\n  untorn surgery clear-page app.untorn --page 2 --output cleared.untorn"
    )]
    ClearPage(ClearPageArgs),
    /// Remove elements [--from-index, --to-index) of a branch or leaf page.
    ///
    /// bbolt: clearing branch elements makes pages unreachable: the freelist is then
    /// abandoned in both metas; run `untorn surgery freelist rebuild` afterwards. untorn:
    /// the path is re-sealed and the freelist rebuilt in the same step.
    #[command(
        after_help = "Examples:\n  untorn surgery clear-page-elements db --page 73 --from-index 28 --to-index 29 --output step1.db\n  untorn surgery freelist rebuild step1.db --output fixed.db\n  untorn surgery clear-page-elements app.untorn --page 3 --from-index 0 --to-index 1 --output fewer.untorn"
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
    /// Abandon the freelist. bbolt: mark it not synced in both metas (bbolt rebuilds it
    /// on open). untorn: a new meta lists no free page, so every page the tree does not
    /// reach is leaked, never reused (works with an unreadable freelist or tree pages);
    /// `freelist rebuild` or `untorn compact` reclaims them.
    #[command(
        after_help = "Examples:\n  untorn surgery freelist abandon db --output a.db\n  untorn surgery freelist abandon app.untorn --output abandoned.untorn"
    )]
    Abandon(SurgeryTarget),
    /// Write a freelist of every unreachable page, committed with a new meta (bbolt: only
    /// for an abandoned freelist and a tree that checks clean; untorn: refused while the
    /// tree references a page that does not verify).
    #[command(
        after_help = "Example (after abandon):\n  untorn surgery freelist abandon db --output a.db\n  untorn surgery freelist rebuild a.db --output b.db\nExample (untorn):\n  untorn surgery freelist rebuild app.untorn --output rebuilt.untorn"
    )]
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
    ///
    /// untorn: fields root, freelist (page ids, which must verify; 0 for none), pgid (the
    /// high-water mark) and txid; both slots and the journal's marker are rewritten, and a
    /// result that fails check is refused unless --force.
    #[command(
        after_help = "Examples:\n  untorn surgery meta update db --meta 1 --fields root:16,freelist:17,pgid:64 --output fixed.db\n  untorn surgery meta update app.untorn --fields txid:100 --output bumped.untorn"
    )]
    Update(MetaUpdateArgs),
}

#[derive(Debug, Args)]
pub struct MetaUpdateArgs {
    #[command(flatten)]
    pub target: SurgeryTarget,
    /// The meta page to update (0 or 1; bbolt files only: an untorn file gets both
    /// slots rewritten).
    #[arg(long, alias = "meta-page", value_name = "0|1")]
    pub meta: Option<u64>,
    /// Comma-separated NAME:VALUE pairs; names: root, freelist, pgid (the high-water
    /// mark), and pageSize (or page_size; bbolt) or txid (untorn).
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
    #[command(
        after_help = "Examples:\n  untorn etcd keys member/snap/db --prefix /registry/pods/\n  untorn etcd keys member/snap/db --rev 120 --json"
    )]
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
    #[command(
        after_help = "Examples:\n  untorn etcd get member/snap/db /registry/pods/ns-1/p\n  untorn etcd get member/snap/db /registry/pods/ns-1/p --rev 120"
    )]
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
    #[command(after_help = "Example:\n  untorn etcd history member/snap/db /registry/pods/ns-1/p")]
    History {
        #[command(flatten)]
        common: EtcdCommon,
        /// The key.
        key: String,
    },
    /// The revision range, the compaction point and gaps.
    #[command(after_help = "Example:\n  untorn etcd revisions member/snap/db")]
    Revisions {
        #[command(flatten)]
        common: EtcdCommon,
    },
    /// etcd's invariants; the snapshot hash of an `etcdctl snapshot save` file; damage
    /// of the bbolt tree in etcd's terms. Exit status: 0 clean, 1 findings, 2 not run.
    #[command(
        after_help = "Examples:\n  untorn etcd check member/snap/db\n  untorn etcd check snapshot.db --json"
    )]
    Check {
        #[command(flatten)]
        common: EtcdCommon,
        /// Keep at most this many findings.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        max_findings: usize,
    },
}
