//! `SimDisk`: a deterministic, fault-injecting simulated disk for untorn's [`Storage`] seam.
//!
//! A disk holds named files (the engine uses two: the data file and its journal). Each
//! file keeps its **durable** bytes (what survives a power cut), a **view** (what reads
//! see: durable bytes plus every completed write, i.e. the volatile write cache) and an
//! ordered list of **pending** (unsynced) operations. `sync` makes a file's pending
//! operations durable. [`SimDisk::crash`] cuts the power: each file's pending writes
//! survive per 512-byte sector as the fault configuration decides, the disk's
//! generation advances, and every handle issued before the crash fails with EIO from
//! then on, so a database that is still running cannot keep writing.
//!
//! A file's directory entry is durable only once `sync_directory_entry` was called on
//! one of its handles (an operation like a write, so crash points land before and after
//! it): a file created since is absent after a crash.
//!
//! Every random decision comes from a [`Rng`] seeded by [`FaultConfig::seed`]; the
//! same seed and the same sequence of calls give the same bytes.
//!
//! # Which faults each zone must survive, and what is guaranteed
//!
//! | Fault (class flag)                         | Journal (`<db>.journal`)                                      | Data file (`<db>`)                                                  | Guarantee after reopen |
//! |--------------------------------------------|---------------------------------------------------------------|---------------------------------------------------------------------|------------------------|
//! | crash: unsynced writes kept as an ordered prefix (`crash`) | survives: an incomplete tail record fails its checksum and is discarded | survives: home writes of a checkpoint are redone from the journal images | every acknowledged commit present with exact values; state = model after some prefix of issued commits; check clean |
//! | torn write: any subset of one call's sectors (`torn`) | survives: header/body CRC detects the torn record (tail) | survives: torn home page is restored from its journal image (doublewrite) | same as crash |
//! | reorder: each unsynced sector independently kept or dropped, so a sector ends as any of its versions (`reorder`) | survives: a record is durable only after its sync; unsynced records may be any mix | survives: home pages are only trusted after the data-file sync that precedes the meta | same as crash |
//! | garbled unsynced sectors: random or zero bytes (`garble`) | survives (garbage is never synced data) | survives | same as crash |
//! | lost write: acknowledged, never persisted, even across sync (`lost`) | may lose acknowledged commits (a lost record looks like a torn tail) | a stale home page fails the parent's (txid, checksum) reference | reads return the right value or `Error::Corrupted`, **never wrong data**; acknowledged commits may be lost |
//! | misdirected write: lands at another sector-aligned offset (`misdirect`) | may lose acknowledged commits or report `Corrupted { kind: Journal }` | the victim page fails its checksum/page id; the intended page is stale | same as lost write |
//! | bit flips and zeroed sectors at rest (`bitrot`, applied to durable state between runs) | damaged record before valid ones is `Corrupted { kind: Journal }`; damaged tail may be cut | page checksum fails: `Corrupted` naming the page | never wrong data, never a panic |
//! | EIO on read (`eio`)                        | open/recovery fails with `Error::Io`                          | the read fails with `Error::Io`                                     | never wrong data; a retry after the fault passes succeeds |
//! | EIO on write or sync (`eio`)               | the commit fails; a failed sync poisons the handle (no retry)  | checkpoint fails; handle poisoned                                   | acknowledged commits survive reopen; the failed commit may or may not be present |
//! | ENOSPC: capacity limit (`enospc`)          | the commit fails with `Error::NoSpace`                        | checkpoint fails with `Error::NoSpace`                              | as EIO on write |
//! | crash during recovery (`recovery-crash`)   | recovery is idempotent: the next open recovers the same commits | restored home pages may be torn again and are restored again        | same as crash |
//!
//! A failed sync behaves like Linux after an fsync error ("fsyncgate"): each pending
//! write is either made durable or silently dropped, and the view keeps the new bytes.
//!
//! Why this file is long: the file model, the fault table and the crash plan act on the
//! same per-file pending-write state, which stays private to this file so no other module
//! can make a write durable behind the simulator's back; about 370 of its lines are unit
//! tests of that state.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use untorn::Storage;

use untorn::unstable::fuzzing::Rng;

/// The unit of atomicity of the simulated medium.
pub const SECTOR_SIZE_BYTES: u64 = 512;

/// Which faults to inject. `Default` is a perfect disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Seed of every random decision.
    pub seed: u64,
    /// The mutating operation (write, set_len or sync; 0-based, counted across all files
    /// since the last crash or `set_faults`) at which the power fails: it and every later
    /// operation return EIO. A write that hits the crash point is "in flight" and may
    /// still partly reach the medium.
    pub crash_at_op: Option<u64>,
    /// At a crash, the write at the cut point persists an arbitrary subset of its sectors.
    pub torn: bool,
    /// At a crash, every unsynced sector is independently kept or dropped (instead of an
    /// ordered prefix of writes surviving).
    pub reorder: bool,
    /// At a crash, chance per unsynced sector that it ends up as garbage or zeros.
    pub garble_per_million: u32,
    /// Chance per write that it is acknowledged but never persisted.
    pub lost_write_per_million: u32,
    /// Chance per write that it persists at another sector-aligned offset.
    pub misdirect_per_million: u32,
    /// Chance per read that it fails with EIO.
    pub read_eio_per_million: u32,
    /// Chance per write or set_len that it fails with EIO (nothing is written).
    pub write_eio_per_million: u32,
    /// Chance per sync that it fails with EIO.
    pub sync_eio_per_million: u32,
    /// The mutating operation (as for `crash_at_op`) that fails with EIO, once.
    pub eio_at_op: Option<u64>,
    /// Total bytes all files may occupy; growing past it fails with ENOSPC.
    pub capacity_bytes: Option<u64>,
    /// Restrict lost, misdirected and EIO faults to these files (`None`: all files).
    pub fault_files: Option<Vec<String>>,
}

/// Counters of what the disk did, for reports and for tests that must see a fault fire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Completed writes (including lost and misdirected ones).
    pub writes: u64,
    /// Completed syncs.
    pub syncs: u64,
    /// Writes acknowledged but never persisted.
    pub lost_writes: u64,
    /// Writes persisted at the wrong offset.
    pub misdirected_writes: u64,
    /// Injected EIO errors (read, write, sync).
    pub eio: u64,
    /// Injected ENOSPC errors.
    pub enospc: u64,
    /// Syncs that failed with an injected EIO (not counting the crash point).
    pub sync_failures: u64,
    /// Crashes so far.
    pub crashes: u64,
    /// Unsynced sectors dropped by crashes.
    pub sectors_dropped: u64,
    /// Unsynced sectors kept by crashes.
    pub sectors_kept: u64,
    /// Unsynced sectors garbled by crashes.
    pub sectors_garbled: u64,
}

/// One unsynced operation, as seen by a crash plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInfo {
    /// Index in the file's pending list.
    pub index: usize,
    /// Offset where the write will persist (for misdirected writes, the wrong one).
    pub offset: u64,
    /// Bytes written (0 for set_len).
    pub len: u64,
    /// Sector pieces a crash plan decides on (1 for set_len).
    pub pieces: usize,
    /// `Some(len)` for a set_len.
    pub set_len: Option<u64>,
    /// The write that hit the crash point (it returned an error).
    pub in_flight: bool,
}

/// What survives a crash, decided piece by piece. For each file, for each pending
/// operation in order, one `bool` per sector piece (one for a set_len). Files or
/// operations not mentioned are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashPlan {
    /// file name → per pending operation → per piece: kept?
    pub keep: BTreeMap<String, Vec<Vec<bool>>>,
    /// Ranges overwritten after the surviving pieces are applied: (file, offset, len, zeros?).
    pub garble: Vec<(String, u64, u64, bool)>,
}

/// Damage applied to durable bytes between runs (at rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Flip bit `bit` (0..8) of the byte at `offset`.
    FlipBit {
        /// Byte offset in the file.
        offset: u64,
        /// Bit index within the byte.
        bit: u8,
    },
    /// Zero the 512-byte sector with this index.
    ZeroSector {
        /// Sector index in the file.
        sector: u64,
    },
}

#[derive(Debug, Clone)]
enum Pending {
    Write {
        offset: u64,
        data: Vec<u8>,
        in_flight: bool,
    },
    SetLen(u64),
}

#[derive(Debug, Clone, Default)]
struct FileState {
    durable: Vec<u8>,
    view: Vec<u8>,
    pending: Vec<Pending>,
    /// Whether the file's directory entry survives a crash: a file created since the
    /// last sync of its directory is absent after one.
    entry_durable: bool,
}

#[derive(Debug, Clone)]
struct Inner {
    generation: u64,
    files: BTreeMap<String, FileState>,
    faults: FaultConfig,
    rng: Rng,
    read_rng: Rng,
    crash_rng: Rng,
    ops: u64,
    dead: bool,
    stats: DiskStats,
    trace: u64,
    /// Print every operation to stderr (`UNTORN_SIM_LOG=1`), for debugging a seed.
    log: bool,
}

/// The simulated disk. Cheap to clone: clones share the same state.
#[derive(Debug, Clone)]
pub struct SimDisk {
    inner: Arc<Mutex<Inner>>,
}

/// A handle to one file of a [`SimDisk`], bound to the disk generation it was issued in.
#[derive(Debug)]
pub struct SimFile {
    inner: Arc<Mutex<Inner>>,
    name: String,
    generation: u64,
}

fn eio(msg: &str) -> io::Error {
    io::Error::new(
        io::Error::from_raw_os_error(5).kind(),
        format!("simulated EIO: {msg}"),
    )
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

fn to_usize(x: u64) -> io::Result<usize> {
    usize::try_from(x).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

/// Splits `[offset, offset+len)` at sector boundaries: (file offset, data offset, len).
fn pieces(offset: u64, len: usize) -> Vec<(u64, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < len {
        let at = offset + pos as u64;
        let to_boundary = (SECTOR_SIZE_BYTES - at % SECTOR_SIZE_BYTES) as usize;
        let n = to_boundary.min(len - pos);
        out.push((at, pos, n));
        pos += n;
    }
    out
}

fn write_into(bytes: &mut Vec<u8>, offset: usize, data: &[u8]) {
    let end = offset + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    if let Some(dst) = bytes.get_mut(offset..end) {
        dst.copy_from_slice(data);
    }
}

fn mix(h: u64, x: u64) -> u64 {
    let mut p = Rng::new(h ^ x);
    p.next_u64()
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    // FNV-1a: only used for the determinism trace.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

impl Inner {
    fn new(faults: FaultConfig) -> Self {
        let seed = faults.seed;
        Inner {
            generation: 0,
            files: BTreeMap::new(),
            rng: Rng::derive(seed, 1),
            read_rng: Rng::derive(seed, 2),
            crash_rng: Rng::derive(seed, 3),
            faults,
            ops: 0,
            dead: false,
            stats: DiskStats::default(),
            trace: 0,
            log: std::env::var_os("UNTORN_SIM_LOG").is_some(),
        }
    }

    fn faults_apply_to(&self, name: &str) -> bool {
        match &self.faults.fault_files {
            None => true,
            Some(list) => list.iter().any(|f| f == name),
        }
    }

    fn total_len(&self) -> u64 {
        self.files.values().map(|f| f.view.len() as u64).sum()
    }

    /// Counts a mutating operation; returns an error if the power is (now) off or an
    /// injected EIO hits it.
    fn begin_mutation(&mut self, name: &str) -> io::Result<u64> {
        if self.dead {
            return Err(eio("power is off (crash point passed)"));
        }
        let op = self.ops;
        self.ops += 1;
        if self.faults.crash_at_op.is_some_and(|c| op >= c) {
            self.dead = true;
            return Err(eio("power failure at the crash point"));
        }
        if self.faults.eio_at_op == Some(op) {
            self.stats.eio += 1;
            return Err(eio("injected at the chosen operation"));
        }
        let _ = name;
        Ok(op)
    }

    /// Injected write EIO and the capacity limit for an operation that leaves `name` at
    /// least `end` bytes long. Returns the file's current length.
    fn admit(&mut self, name: &str, end: usize, what: &str) -> io::Result<usize> {
        if self.faults_apply_to(name) && self.rng.chance(self.faults.write_eio_per_million) {
            self.stats.eio += 1;
            return Err(eio(what));
        }
        let cur_len = self.files.get(name).map_or(0, |f| f.view.len());
        if let Some(cap) = self.faults.capacity_bytes {
            let grow = end.saturating_sub(cur_len) as u64;
            if self.total_len() + grow > cap {
                self.stats.enospc += 1;
                return Err(enospc());
            }
        }
        Ok(cur_len)
    }

    fn write(&mut self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let start = to_usize(offset)?;
        let end = start
            .checked_add(data.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))?;
        let was_dead = self.dead;
        if let Err(e) = self.begin_mutation(name) {
            if !was_dead && self.dead {
                // The write that hits the crash point is in flight: some of it may land.
                let file = self.files.entry(name.to_owned()).or_default();
                file.pending.push(Pending::Write {
                    offset,
                    data: data.to_vec(),
                    in_flight: true,
                });
            }
            return Err(e);
        }
        let faulty = self.faults_apply_to(name);
        let cur_len = self.admit(name, end, "write")?;
        let lost = faulty && self.rng.chance(self.faults.lost_write_per_million);
        let misdirect = !lost && faulty && self.rng.chance(self.faults.misdirect_per_million);
        let mut target = offset;
        if misdirect {
            let view_len = cur_len.max(end) as u64;
            let slots = view_len.saturating_sub(data.len() as u64) / SECTOR_SIZE_BYTES + 1;
            let mut t = self.rng.below(slots) * SECTOR_SIZE_BYTES;
            if t == offset {
                t = if offset >= SECTOR_SIZE_BYTES {
                    offset - SECTOR_SIZE_BYTES
                } else {
                    offset + SECTOR_SIZE_BYTES
                };
            }
            target = t;
        }
        if self.log {
            eprintln!(
                "sim op {}: write {name} @{offset} len {}{}",
                self.ops - 1,
                data.len(),
                if lost {
                    " (LOST)"
                } else if misdirect {
                    " (MISDIRECTED)"
                } else {
                    ""
                }
            );
        }
        self.trace = mix(self.trace, 1 ^ hash_bytes(name.as_bytes()));
        self.trace = mix(self.trace, offset);
        self.trace = mix(self.trace, hash_bytes(data));
        let file = self.files.entry(name.to_owned()).or_default();
        write_into(&mut file.view, start, data);
        self.stats.writes += 1;
        if lost {
            self.stats.lost_writes += 1;
        } else {
            if misdirect {
                self.stats.misdirected_writes += 1;
            }
            file.pending.push(Pending::Write {
                offset: target,
                data: data.to_vec(),
                in_flight: false,
            });
        }
        Ok(())
    }

    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()> {
        let new_len = to_usize(len)?;
        self.begin_mutation(name)?;
        self.admit(name, new_len, "set_len")?;
        if self.log {
            eprintln!("sim op {}: set_len {name} {len}", self.ops - 1);
        }
        self.trace = mix(self.trace, 2 ^ hash_bytes(name.as_bytes()));
        self.trace = mix(self.trace, len);
        let file = self.files.entry(name.to_owned()).or_default();
        file.view.resize(new_len, 0);
        file.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.begin_mutation(name)?;
        if self.log {
            eprintln!("sim op {}: sync {name}", self.ops - 1);
        }
        self.trace = mix(self.trace, 3 ^ hash_bytes(name.as_bytes()));
        let fail = self.faults_apply_to(name) && self.rng.chance(self.faults.sync_eio_per_million);
        let Some(file) = self.files.get_mut(name) else {
            self.stats.syncs += 1;
            return Ok(());
        };
        let pending = std::mem::take(&mut file.pending);
        for p in pending {
            // After a failed fsync each dirty write either reached the medium or is gone.
            if fail && self.rng.coin() {
                continue;
            }
            apply_whole(&mut file.durable, &p);
        }
        if fail {
            self.stats.eio += 1;
            self.stats.sync_failures += 1;
            return Err(eio("sync"));
        }
        self.stats.syncs += 1;
        Ok(())
    }

    fn sync_directory(&mut self, name: &str) -> io::Result<()> {
        self.begin_mutation(name)?;
        if self.log {
            eprintln!("sim op {}: sync directory entry of {name}", self.ops - 1);
        }
        self.trace = mix(self.trace, 4 ^ hash_bytes(name.as_bytes()));
        if let Some(f) = self.files.get_mut(name) {
            f.entry_durable = true;
        }
        Ok(())
    }

    fn read(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.dead {
            return Err(eio("power is off (crash point passed)"));
        }
        if self.faults_apply_to(name) && self.read_rng.chance(self.faults.read_eio_per_million) {
            self.stats.eio += 1;
            return Err(eio("read"));
        }
        let start = to_usize(offset)?;
        let end = start
            .checked_add(buf.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))?;
        let view: &[u8] = self.files.get(name).map_or(&[], |f| f.view.as_slice());
        match view.get(start..end) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end of simulated file",
            )),
        }
    }

    fn random_plan(&mut self) -> CrashPlan {
        let mut plan = CrashPlan::default();
        let torn = self.faults.torn;
        let reorder = self.faults.reorder;
        let garble = self.faults.garble_per_million;
        for (name, file) in &self.files {
            let n = file.pending.len();
            let cut = self.crash_rng.index(n + 1);
            let mut ops = Vec::with_capacity(n);
            for (i, p) in file.pending.iter().enumerate() {
                let count = piece_count(p);
                let keep: Vec<bool> = if reorder {
                    (0..count).map(|_| self.crash_rng.coin()).collect()
                } else if i < cut {
                    vec![true; count]
                } else if i == cut && torn {
                    (0..count).map(|_| self.crash_rng.coin()).collect()
                } else {
                    vec![false; count]
                };
                if garble > 0 {
                    if let Pending::Write { offset, data, .. } = p {
                        for (at, _, len) in pieces(*offset, data.len()) {
                            if self.crash_rng.chance(garble) {
                                let zeros = self.crash_rng.coin();
                                plan.garble.push((name.clone(), at, len as u64, zeros));
                            }
                        }
                    }
                }
                ops.push(keep);
            }
            plan.keep.insert(name.clone(), ops);
        }
        plan
    }

    fn crash_with(&mut self, plan: &CrashPlan) {
        if self.log {
            eprintln!("sim CRASH: plan {:?}", plan.keep);
        }
        let mut garble_rng = Rng::derive(self.faults.seed ^ self.stats.crashes, 4);
        for (name, file) in self.files.iter_mut() {
            let decisions = plan.keep.get(name);
            let mut durable = std::mem::take(&mut file.durable);
            for (i, p) in file.pending.iter().enumerate() {
                let keep = decisions.and_then(|d| d.get(i));
                match p {
                    Pending::SetLen(len) => {
                        if keep.and_then(|k| k.first()).copied().unwrap_or(false) {
                            durable.resize(to_usize(*len).unwrap_or(durable.len()), 0);
                            self.stats.sectors_kept += 1;
                        } else {
                            self.stats.sectors_dropped += 1;
                        }
                    }
                    Pending::Write { offset, data, .. } => {
                        for (j, (at, from, len)) in
                            pieces(*offset, data.len()).into_iter().enumerate()
                        {
                            let kept = keep.and_then(|k| k.get(j)).copied().unwrap_or(false);
                            if kept {
                                if let (Ok(at), Some(src)) =
                                    (to_usize(at), data.get(from..from + len))
                                {
                                    write_into(&mut durable, at, src);
                                }
                                self.stats.sectors_kept += 1;
                            } else {
                                self.stats.sectors_dropped += 1;
                            }
                        }
                    }
                }
            }
            for (gname, at, len, zeros) in &plan.garble {
                if gname != name {
                    continue;
                }
                let (Ok(at), Ok(len)) = (to_usize(*at), to_usize(*len)) else {
                    continue;
                };
                let mut junk = vec![0u8; len];
                if !zeros {
                    garble_rng.fill(&mut junk);
                }
                write_into(&mut durable, at, &junk);
                self.stats.sectors_garbled += 1;
            }
            file.pending.clear();
            file.view = durable.clone();
            file.durable = durable;
        }
        // A directory entry never synced is lost with the power.
        self.files.retain(|_, f| f.entry_durable);
        self.generation += 1;
        self.stats.crashes += 1;
        self.ops = 0;
        self.dead = false;
        // A crash ends the run: the crash point and the one-shot EIO are spent.
        self.faults.crash_at_op = None;
        self.faults.eio_at_op = None;
    }
}

fn piece_count(p: &Pending) -> usize {
    match p {
        Pending::SetLen(_) => 1,
        Pending::Write { offset, data, .. } => pieces(*offset, data.len()).len(),
    }
}

fn apply_whole(durable: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::SetLen(len) => {
            let len = usize::try_from(*len).unwrap_or(durable.len());
            durable.resize(len, 0);
        }
        Pending::Write { offset, data, .. } => {
            if let Ok(at) = usize::try_from(*offset) {
                write_into(durable, at, data);
            }
        }
    }
}

impl SimDisk {
    /// An empty disk with the given faults.
    pub fn new(faults: FaultConfig) -> Self {
        SimDisk {
            inner: Arc::new(Mutex::new(Inner::new(faults))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// A handle to file `name` (created empty if missing), valid until the next crash.
    pub fn file(&self, name: &str) -> Arc<dyn Storage> {
        Arc::new(self.sim_file(name))
    }

    /// Like [`SimDisk::file`], but the concrete type.
    pub fn sim_file(&self, name: &str) -> SimFile {
        let mut inner = self.lock();
        inner.files.entry(name.to_owned()).or_default();
        SimFile {
            inner: Arc::clone(&self.inner),
            name: name.to_owned(),
            generation: inner.generation,
        }
    }

    /// Replaces the fault configuration and restarts the operation counter and the
    /// random streams (from the new seed). Durable and pending bytes are kept.
    pub fn set_faults(&self, faults: FaultConfig) {
        let mut inner = self.lock();
        let seed = faults.seed;
        inner.rng = Rng::derive(seed, 1);
        inner.read_rng = Rng::derive(seed, 2);
        inner.crash_rng = Rng::derive(seed, 3);
        inner.faults = faults;
        inner.ops = 0;
    }

    /// The current fault configuration.
    pub fn faults(&self) -> FaultConfig {
        self.lock().faults.clone()
    }

    /// Mutating operations (writes, set_lens, syncs) since the last crash or `set_faults`.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Whether the crash point has been reached (every operation now fails).
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Counters.
    pub fn stats(&self) -> DiskStats {
        self.lock().stats
    }

    /// A running hash of every mutating operation (name, offset, bytes), to check that
    /// the same seed drives the same I/O.
    pub fn trace_hash(&self) -> u64 {
        self.lock().trace
    }

    /// Names of the files on the disk.
    pub fn file_names(&self) -> Vec<String> {
        self.lock().files.keys().cloned().collect()
    }

    /// The unsynced operations of `name`, in order.
    pub fn pending(&self, name: &str) -> Vec<PendingInfo> {
        let inner = self.lock();
        let Some(file) = inner.files.get(name) else {
            return Vec::new();
        };
        file.pending
            .iter()
            .enumerate()
            .map(|(index, p)| match p {
                Pending::SetLen(len) => PendingInfo {
                    index,
                    offset: 0,
                    len: 0,
                    pieces: 1,
                    set_len: Some(*len),
                    in_flight: false,
                },
                Pending::Write {
                    offset,
                    data,
                    in_flight,
                } => PendingInfo {
                    index,
                    offset: *offset,
                    len: data.len() as u64,
                    pieces: piece_count(p),
                    set_len: None,
                    in_flight: *in_flight,
                },
            })
            .collect()
    }

    /// Cuts the power: unsynced writes survive per sector as the fault configuration
    /// decides; old handles fail from now on. Returns the plan that was applied.
    pub fn crash(&self) -> CrashPlan {
        let mut inner = self.lock();
        let plan = inner.random_plan();
        inner.crash_with(&plan);
        plan
    }

    /// A clean power-off: every pending write reaches the medium (as if the OS flushed
    /// its cache before the power went), then handles are invalidated like a crash.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        let mut plan = CrashPlan::default();
        for (name, file) in &inner.files {
            let keep = file
                .pending
                .iter()
                .map(|p| vec![true; piece_count(p)])
                .collect();
            plan.keep.insert(name.clone(), keep);
        }
        inner.crash_with(&plan);
    }

    /// Cuts the power with an explicit survival plan (used by the exhaustive explorer).
    pub fn crash_with(&self, plan: &CrashPlan) {
        self.lock().crash_with(plan);
    }

    /// An independent deep copy of the disk (durable, view, pending, counters). Handles
    /// of `self` keep operating on `self`.
    pub fn fork(&self) -> SimDisk {
        let inner = self.lock().clone();
        SimDisk {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// The durable bytes of `name` (what a crash right now with nothing pending keeps).
    pub fn durable_bytes(&self, name: &str) -> Vec<u8> {
        self.lock()
            .files
            .get(name)
            .map(|f| f.durable.clone())
            .unwrap_or_default()
    }

    /// The bytes reads of `name` currently see.
    pub fn view_bytes(&self, name: &str) -> Vec<u8> {
        self.lock()
            .files
            .get(name)
            .map(|f| f.view.clone())
            .unwrap_or_default()
    }

    /// Applies at-rest damage to the durable bytes (and the view) of `name`. Damage past
    /// the end of the file is ignored. Returns whether anything changed.
    pub fn damage(&self, name: &str, damage: Damage) -> bool {
        let mut inner = self.lock();
        let Some(file) = inner.files.get_mut(name) else {
            return false;
        };
        let mut changed = false;
        for bytes in [&mut file.durable, &mut file.view] {
            match damage {
                Damage::FlipBit { offset, bit } => {
                    if let Some(b) = usize::try_from(offset).ok().and_then(|o| bytes.get_mut(o)) {
                        *b ^= 1 << (bit % 8);
                        changed = true;
                    }
                }
                Damage::ZeroSector { sector } => {
                    let start = sector.saturating_mul(SECTOR_SIZE_BYTES);
                    let len = bytes.len() as u64;
                    if start < len {
                        let end = (start + SECTOR_SIZE_BYTES).min(len);
                        if let (Ok(s), Ok(e)) = (usize::try_from(start), usize::try_from(end)) {
                            if let Some(dst) = bytes.get_mut(s..e) {
                                changed |= dst.iter().any(|b| *b != 0);
                                dst.fill(0);
                            }
                        }
                    }
                }
            }
        }
        changed
    }

    /// Applies `count` random at-rest damages (bit flips and zeroed sectors) to `name`.
    pub fn damage_random(&self, rng: &mut Rng, name: &str, count: usize) -> Vec<Damage> {
        let len = self.lock().files.get(name).map_or(0, |f| f.durable.len()) as u64;
        if len == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let d = if rng.coin() {
                Damage::FlipBit {
                    offset: rng.below(len),
                    bit: (rng.below(8)) as u8,
                }
            } else {
                Damage::ZeroSector {
                    sector: rng.below(len.div_ceil(SECTOR_SIZE_BYTES)),
                }
            };
            self.damage(name, d);
            out.push(d);
        }
        out
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic in another thread while holding the lock leaves a consistent state (every
    // mutation completes before the guard drops or not at all); keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimFile {
    fn live(&self) -> io::Result<MutexGuard<'_, Inner>> {
        let inner = lock(&self.inner);
        if inner.generation != self.generation {
            return Err(eio("handle from before a crash"));
        }
        Ok(inner)
    }

    /// The file name on its disk.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Storage for SimFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.live()?.read(&self.name, offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.live()?.write(&self.name, offset, buf)
    }
    fn sync(&self) -> io::Result<()> {
        self.live()?.sync(&self.name)
    }
    fn len(&self) -> io::Result<u64> {
        let inner = self.live()?;
        if inner.dead {
            return Err(eio("power is off (crash point passed)"));
        }
        Ok(inner
            .files
            .get(&self.name)
            .map_or(0, |f| f.view.len() as u64))
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.live()?.set_len(&self.name, len)
    }
    fn sync_directory_entry(&self) -> io::Result<()> {
        self.live()?.sync_directory(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: usize = SECTOR_SIZE_BYTES as usize;

    fn disk(faults: FaultConfig) -> SimDisk {
        SimDisk::new(faults)
    }

    /// A file whose directory entry is durable (and so survives crashes).
    fn durable(d: &SimDisk, name: &str) -> Arc<dyn Storage> {
        let f = d.file(name);
        f.sync_directory_entry().expect("directory sync");
        f
    }

    #[test]
    fn a_file_created_since_the_last_directory_sync_vanishes_at_a_crash() {
        let d = disk(FaultConfig::default());
        let f = d.file("new");
        f.write_at(0, b"x").expect("write");
        f.sync().expect("sync");
        let g = durable(&d, "kept");
        g.write_at(0, b"y").expect("write");
        g.sync().expect("sync");
        d.crash();
        assert_eq!(d.file_names(), vec!["kept".to_owned()]);
        assert_eq!(d.durable_bytes("kept"), b"y");
    }

    fn sectors_of(bytes: &[u8]) -> Vec<&[u8]> {
        bytes.chunks(S).collect()
    }

    #[test]
    fn synced_data_survives_every_crash_mode() {
        for seed in 0..64 {
            let d = disk(FaultConfig {
                seed,
                torn: seed % 2 == 0,
                reorder: seed % 3 == 0,
                garble_per_million: 500_000,
                ..FaultConfig::default()
            });
            let f = durable(&d, "data");
            f.write_at(0, &[7u8; 4 * S]).expect("write");
            f.sync().expect("sync");
            f.write_at(4 * S as u64, &[9u8; 2 * S])
                .expect("unsynced write");
            d.crash();
            let bytes = d.durable_bytes("data");
            assert_eq!(bytes.get(..4 * S), Some(&[7u8; 4 * S][..]), "seed {seed}");
        }
    }

    #[test]
    fn unsynced_writes_are_sometimes_dropped_and_sometimes_kept() {
        let (mut kept, mut dropped) = (0, 0);
        for seed in 0..64 {
            let d = disk(FaultConfig {
                seed,
                ..FaultConfig::default()
            });
            let f = durable(&d, "data");
            f.write_at(0, &[1u8; S]).expect("write");
            d.crash();
            match d.durable_bytes("data").as_slice() {
                [] => dropped += 1,
                b if b == [1u8; S] => kept += 1,
                other => panic!("seed {seed}: unexpected {} bytes", other.len()),
            }
        }
        assert!(kept > 0 && dropped > 0, "kept {kept} dropped {dropped}");
    }

    #[test]
    fn ordered_crash_keeps_a_prefix_of_writes() {
        for seed in 0..128 {
            let d = disk(FaultConfig {
                seed,
                ..FaultConfig::default()
            });
            let f = durable(&d, "j");
            for i in 0..6u8 {
                f.write_at(u64::from(i) * S as u64, &[i + 1; S])
                    .expect("write");
            }
            d.crash();
            let bytes = d.durable_bytes("j");
            let n = bytes.len() / S;
            for (i, s) in sectors_of(&bytes).iter().enumerate() {
                assert_eq!(*s, &[i as u8 + 1; S][..], "seed {seed}: prefix of {n}");
            }
        }
    }

    #[test]
    fn torn_write_keeps_only_a_subset_of_its_sectors() {
        let mut mixed = 0;
        for seed in 0..64 {
            let d = disk(FaultConfig {
                seed,
                torn: true,
                ..FaultConfig::default()
            });
            let f = durable(&d, "data");
            f.write_at(0, &[0xAA; 8 * S]).expect("write");
            f.sync().expect("sync");
            f.write_at(0, &[0xBB; 8 * S]).expect("write");
            d.crash();
            let bytes = d.durable_bytes("data");
            assert_eq!(bytes.len(), 8 * S);
            let mut news = 0;
            for s in sectors_of(&bytes) {
                // Each sector is wholly old or wholly new: the sector is the atomic unit.
                assert!(s == [0xAA; S] || s == [0xBB; S], "seed {seed}");
                news += usize::from(s == [0xBB; S]);
            }
            if news > 0 && news < 8 {
                mixed += 1;
            }
        }
        assert!(mixed > 0, "no torn write in 64 seeds");
    }

    #[test]
    fn reorder_can_keep_a_later_write_without_an_earlier_one() {
        let mut seen = false;
        for seed in 0..64 {
            let d = disk(FaultConfig {
                seed,
                reorder: true,
                ..FaultConfig::default()
            });
            let f = durable(&d, "data");
            f.write_at(0, &[1u8; S]).expect("write");
            f.write_at(S as u64, &[2u8; S]).expect("write");
            d.crash();
            let bytes = d.durable_bytes("data");
            if bytes.len() == 2 * S && bytes.get(..S) == Some(&[0u8; S][..]) {
                seen = true;
            }
        }
        assert!(
            seen,
            "reorder never dropped an earlier write while keeping a later one"
        );
    }

    #[test]
    fn same_seed_gives_same_bytes() {
        let run = |seed: u64| {
            let d = disk(FaultConfig {
                seed,
                torn: true,
                reorder: true,
                garble_per_million: 200_000,
                lost_write_per_million: 100_000,
                misdirect_per_million: 100_000,
                ..FaultConfig::default()
            });
            let f = durable(&d, "data");
            for i in 0..20u64 {
                f.write_at(i * 700, &[i as u8; 1500]).expect("write");
                if i % 7 == 3 {
                    f.sync().expect("sync");
                }
            }
            d.crash();
            (d.durable_bytes("data"), d.trace_hash(), d.stats())
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42).0, run(43).0);
    }

    #[test]
    fn handles_from_before_a_crash_fail_every_operation() {
        let d = disk(FaultConfig::default());
        let f = durable(&d, "data");
        f.write_at(0, b"x").expect("write");
        d.crash();
        let mut buf = [0u8; 1];
        assert!(f.read_at(0, &mut buf).is_err());
        assert!(f.write_at(0, b"y").is_err());
        assert!(f.sync().is_err());
        assert!(f.len().is_err());
        assert!(f.set_len(0).is_err());
        let g = durable(&d, "data");
        assert!(g.len().is_ok(), "a new handle works");
    }

    #[test]
    fn crash_point_fails_that_op_and_every_later_one() {
        let d = disk(FaultConfig {
            crash_at_op: Some(3),
            ..FaultConfig::default()
        });
        let f = durable(&d, "data"); // op 0: the directory sync
        f.write_at(0, &[1; S]).expect("op 1");
        f.sync().expect("op 2");
        assert!(
            f.write_at(S as u64, &[2; S]).is_err(),
            "op 3 is the crash point"
        );
        assert!(d.is_dead());
        assert!(f.sync().is_err());
        let mut buf = [0u8; 1];
        assert!(
            f.read_at(0, &mut buf).is_err(),
            "reads fail after the power cut"
        );
        let pending = d.pending("data");
        assert_eq!(pending.len(), 1);
        assert!(pending.first().is_some_and(|p| p.in_flight));
        d.crash();
        assert!(d.durable_bytes("data").starts_with(&[1; S]));
        assert!(!d.is_dead());
    }

    #[test]
    fn lost_write_is_acknowledged_and_readable_but_never_persisted() {
        let d = disk(FaultConfig {
            lost_write_per_million: 1_000_000,
            ..FaultConfig::default()
        });
        let f = durable(&d, "data");
        f.write_at(0, b"new").expect("acknowledged");
        let mut buf = [0u8; 3];
        f.read_at(0, &mut buf).expect("read");
        assert_eq!(&buf, b"new", "the cache serves the write");
        f.sync().expect("sync");
        d.crash();
        assert!(d.durable_bytes("data").is_empty());
        assert_eq!(d.stats().lost_writes, 1);
    }

    #[test]
    fn misdirected_write_lands_at_another_aligned_offset() {
        let d = disk(FaultConfig {
            misdirect_per_million: 1_000_000,
            fault_files: Some(vec!["data".into()]),
            ..FaultConfig::default()
        });
        let f = durable(&d, "data");
        f.set_len(8 * S as u64).expect("set_len");
        f.sync().expect("sync");
        f.write_at(3 * S as u64, &[5; S]).expect("write");
        f.sync().expect("sync");
        d.crash();
        let bytes = d.durable_bytes("data");
        let hits: Vec<usize> = sectors_of(&bytes)
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == [5; S])
            .map(|(i, _)| i)
            .collect();
        assert_eq!(hits.len(), 1);
        assert_ne!(hits, vec![3]);
        // Files outside `fault_files` are untouched by the fault.
        let j = durable(&d, "journal");
        j.write_at(0, &[6; S]).expect("write");
        j.sync().expect("sync");
        d.crash();
        assert_eq!(d.durable_bytes("journal"), vec![6; S]);
    }

    #[test]
    fn eio_and_enospc_are_injected() {
        let d = disk(FaultConfig {
            eio_at_op: Some(2),
            capacity_bytes: Some(2 * S as u64),
            ..FaultConfig::default()
        });
        let f = durable(&d, "data"); // op 0: the directory sync
        f.write_at(0, &[1; S]).expect("op 1");
        let e = f.sync().expect_err("op 2 fails");
        assert_eq!(e.raw_os_error(), None);
        assert!(e.to_string().contains("EIO"));
        f.sync().expect("one-shot");
        let e = f.write_at(S as u64, &[1; 2 * S]).expect_err("full");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(e.raw_os_error(), Some(28));
        let r = disk(FaultConfig {
            read_eio_per_million: 1_000_000,
            ..FaultConfig::default()
        });
        let g = durable(&r, "data");
        g.write_at(0, b"abc").expect("write");
        let mut buf = [0u8; 3];
        assert!(g.read_at(0, &mut buf).is_err());
    }

    #[test]
    fn failed_sync_drops_or_keeps_each_write_like_linux() {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..32 {
            let d = disk(FaultConfig {
                seed,
                sync_eio_per_million: 1_000_000,
                ..FaultConfig::default()
            });
            let f = durable(&d, "data");
            f.write_at(0, &[1; S]).expect("write");
            assert!(f.sync().is_err());
            assert!(
                d.pending("data").is_empty(),
                "a failed sync clears the dirty state"
            );
            d.crash();
            outcomes.insert(d.durable_bytes("data").len());
        }
        assert_eq!(
            outcomes.len(),
            2,
            "both kept and dropped occur: {outcomes:?}"
        );
    }

    #[test]
    fn explicit_crash_plan_and_fork() {
        let d = disk(FaultConfig::default());
        let f = durable(&d, "data");
        f.write_at(0, &[1; 2 * S]).expect("write");
        f.write_at(2 * S as u64, &[2; S]).expect("write");
        let info = d.pending("data");
        assert_eq!(
            info.iter().map(|p| p.pieces).collect::<Vec<_>>(),
            vec![2, 1]
        );
        let fork = d.fork();
        let mut plan = CrashPlan::default();
        plan.keep
            .insert("data".into(), vec![vec![false, true], vec![true]]);
        fork.crash_with(&plan);
        let bytes = fork.durable_bytes("data");
        assert_eq!(bytes.len(), 3 * S);
        assert_eq!(bytes.get(..S), Some(&[0; S][..]));
        assert_eq!(bytes.get(S..), Some(&[[1u8; S], [2; S]].concat()[..]));
        assert_eq!(d.pending("data").len(), 2, "the original is untouched");
        f.sync().expect("the original's handles still work");
    }

    #[test]
    fn truncate_then_write_may_leave_the_old_tail() {
        let d = disk(FaultConfig::default());
        let f = durable(&d, "j");
        f.write_at(0, &[1; 4 * S]).expect("write");
        f.sync().expect("sync");
        f.set_len(0).expect("truncate");
        f.write_at(0, &[2; S]).expect("write");
        let mut plan = CrashPlan::default();
        plan.keep.insert("j".into(), vec![vec![false], vec![true]]);
        d.crash_with(&plan);
        let bytes = d.durable_bytes("j");
        assert_eq!(bytes.len(), 4 * S);
        assert_eq!(bytes.get(..S), Some(&[2; S][..]));
        assert_eq!(bytes.get(S..2 * S), Some(&[1; S][..]));
    }

    #[test]
    fn at_rest_damage_changes_durable_bytes() {
        let d = disk(FaultConfig::default());
        let f = durable(&d, "data");
        f.write_at(0, &[0xFF; 2 * S]).expect("write");
        f.sync().expect("sync");
        assert!(d.damage("data", Damage::ZeroSector { sector: 1 }));
        assert!(d.damage("data", Damage::FlipBit { offset: 3, bit: 0 }));
        assert!(!d.damage("data", Damage::ZeroSector { sector: 9 }));
        let bytes = d.durable_bytes("data");
        assert_eq!(bytes.get(3), Some(&0xFE));
        assert_eq!(bytes.get(S..), Some(&[0; S][..]));
        let mut buf = [0u8; 4];
        d.file("data").read_at(0, &mut buf).expect("read");
        assert_eq!(buf, [0xFF, 0xFF, 0xFF, 0xFE]);
        let mut rng = Rng::new(5);
        assert_eq!(d.damage_random(&mut rng, "data", 3).len(), 3);
    }
}
