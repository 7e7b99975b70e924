//! What a run reports: per-seed counters, the faults that fired, and the failures with
//! the command that reproduces each.

/// One failed seed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub message: String,
    /// The command that reproduces it.
    pub repro: String,
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Seeds without a failure.
    pub passed: u64,
    /// Seeds with a failure.
    pub failed: u64,
    /// Crash states explored (each a crash followed by a reopen and checks).
    pub crash_states: u64,
    /// Full crash/reopen cycles (workload, crash, reopen, verify).
    pub cycles: u64,
    /// Reopens where damage was detected (`Corrupted`) under data-destroying faults.
    pub corruption_detected: u64,
    /// Read snapshots verified (held across commits or on reader threads).
    pub snapshots_verified: u64,
    /// Commits that returned an error (then verified never to be visible).
    pub failed_commits: u64,
    /// Reopens that needed an explicit rollback past a damaged, unacknowledged record.
    pub rollbacks: u64,
    /// Commits that wrote pages straight home (J25), as the engine counted them.
    pub direct_home_commits: u64,
    /// Pages those commits wrote straight home.
    pub direct_home_pages: u64,
    /// What the simulated disks did, summed over all seeds (shows each fault fired).
    pub faults_fired: FaultsFired,
    /// The failures.
    pub failures: Vec<Failure>,
}

impl Summary {
    pub(crate) fn absorb(&mut self, s: &SeedStats) {
        self.crash_states += s.crash_states;
        self.cycles += s.cycles;
        self.corruption_detected += s.corruption_detected;
        self.snapshots_verified += s.snapshots_verified;
        self.failed_commits += s.failed_commits;
        self.rollbacks += s.rollbacks;
        self.direct_home_commits += s.direct_home_commits;
        self.direct_home_pages += s.direct_home_pages;
        self.faults_fired.add(&s.faults_fired);
    }
}

/// Faults that actually fired, summed from [`crate::disk::DiskStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultsFired {
    /// Injected EIO (read, write, sync).
    pub eio: u64,
    /// Syncs that failed with EIO.
    pub sync_failures: u64,
    /// Injected ENOSPC.
    pub enospc: u64,
    /// Lost writes.
    pub lost_writes: u64,
    /// Misdirected writes.
    pub misdirected_writes: u64,
    /// Unsynced sectors dropped by crashes.
    pub sectors_dropped: u64,
    /// Unsynced sectors garbled by crashes.
    pub sectors_garbled: u64,
}

impl FaultsFired {
    fn add(&mut self, o: &FaultsFired) {
        self.eio += o.eio;
        self.sync_failures += o.sync_failures;
        self.enospc += o.enospc;
        self.lost_writes += o.lost_writes;
        self.misdirected_writes += o.misdirected_writes;
        self.sectors_dropped += o.sectors_dropped;
        self.sectors_garbled += o.sectors_garbled;
    }

    pub(crate) fn add_disk(&mut self, d: &crate::disk::DiskStats) {
        self.add(&FaultsFired {
            eio: d.eio,
            sync_failures: d.sync_failures,
            enospc: d.enospc,
            lost_writes: d.lost_writes,
            misdirected_writes: d.misdirected_writes,
            sectors_dropped: d.sectors_dropped,
            sectors_garbled: d.sectors_garbled,
        });
    }
}

/// Counters of one seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeedStats {
    /// Crash states explored.
    pub crash_states: u64,
    /// Crash/reopen cycles.
    pub cycles: u64,
    /// Reopens that detected damage.
    pub corruption_detected: u64,
    /// Read snapshots verified.
    pub snapshots_verified: u64,
    /// Commits that returned an error.
    pub failed_commits: u64,
    /// Reopens with an explicit rollback.
    pub rollbacks: u64,
    /// Commits that wrote pages straight home (J25).
    pub direct_home_commits: u64,
    /// Pages those commits wrote straight home.
    pub direct_home_pages: u64,
    /// Hash of every mutating disk operation (equal across runs of one seed when the
    /// engine is deterministic).
    pub trace: u64,
    /// Faults that fired.
    pub faults_fired: FaultsFired,
}

/// The message of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}
