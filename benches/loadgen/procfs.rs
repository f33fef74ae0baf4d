//! What `/proc` says about a process: CPU time (per-thread scheduler accounting, in
//! nanoseconds), resident memory (`VmRSS`), proportional memory (`Pss` from
//! `smaps_rollup`: shared pages divided among the processes that map them) and threads,
//! for one process or a changing set, once or sampled in the background.

use std::collections::HashMap;
use std::fs;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time of a process at one moment: per live thread in nanoseconds, and the
/// process-wide total (ended threads included) in clock ticks.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    threads: HashMap<u32, u64>,
    ticks: u64,
}

impl CpuSnapshot {
    /// Reads `/proc/PID/task/*/schedstat` (first field: time on CPU in ns) and
    /// `/proc/PID/stat` (utime + stime). Empty when the process is gone.
    pub fn take(pid: u32) -> Self {
        let mut threads = HashMap::new();
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            return Self::default();
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|name| name.parse().ok()) else {
                continue;
            };
            let schedstat = fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            if let Some(ns) = first_number(&schedstat) {
                threads.insert(tid, ns);
            }
        }
        Self {
            threads,
            ticks: process_ticks(pid),
        }
    }

    /// CPU seconds spent between `earlier` and this snapshot: the exact per-thread sum
    /// (threads started in between count from zero), unless the process-wide tick count
    /// shows more than two ticks beyond it, which means threads ended in between and
    /// took their time with them; then the tick count.
    pub fn secs_since(&self, earlier: &Self) -> f64 {
        let ns: u64 = self
            .threads
            .iter()
            .map(|(tid, now)| now.saturating_sub(earlier.threads.get(tid).copied().unwrap_or(0)))
            .sum();
        let exact = ns as f64 / 1e9;
        let coarse = self.ticks.saturating_sub(earlier.ticks) as f64 / TICKS_PER_SEC;
        if coarse > exact + 2.0 / TICKS_PER_SEC {
            coarse
        } else {
            exact
        }
    }

    /// Live threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

/// utime + stime of the whole process, in clock ticks.
fn process_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; fields after its `)` start at field 3.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| -> u64 {
        fields
            .get(number - 3)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

fn first_number(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Resident memory of one process, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Memory {
    /// `VmRSS`: every resident page it maps, shared ones included.
    pub rss_kib: u64,
    /// `Pss`: shared pages divided among their users, so a sum over processes counts
    /// them once.
    pub pss_kib: u64,
}

impl Memory {
    /// Reads `/proc/PID/status` and, when `with_pss`, `/proc/PID/smaps_rollup` (which
    /// walks the page tables: slower). Zero when the process is gone.
    pub fn read(pid: u32, with_pss: bool) -> Self {
        let rss_kib = kib_field(&format!("/proc/{pid}/status"), "VmRSS:");
        let pss_kib = if with_pss {
            kib_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
        } else {
            0
        };
        Self { rss_kib, pss_kib }
    }
}

impl std::ops::Add for Memory {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            rss_kib: self.rss_kib + other.rss_kib,
            pss_kib: self.pss_kib + other.pss_kib,
        }
    }
}

/// The value of a `Name:   123 kB` line.
fn kib_field(path: &str, name: &str) -> u64 {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Which processes to measure.
#[derive(Clone)]
pub enum Pids {
    /// The service.
    One(u32),
    /// Whichever ffmpeg processes are running.
    Running(Arc<Mutex<Vec<u32>>>),
}

impl Pids {
    pub fn list(&self) -> Vec<u32> {
        match self {
            Self::One(pid) => vec![*pid],
            Self::Running(pids) => pids.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }

    pub fn cpu(&self) -> HashMap<u32, CpuSnapshot> {
        self.list()
            .into_iter()
            .map(|pid| (pid, CpuSnapshot::take(pid)))
            .collect()
    }

    pub fn memory(&self) -> Memory {
        self.list()
            .into_iter()
            .map(|pid| Memory::read(pid, true))
            .fold(Memory::default(), |sum, memory| sum + memory)
    }
}

/// CPU seconds between two sets of snapshots, over the processes alive at the end.
pub fn cpu_between(before: &HashMap<u32, CpuSnapshot>, after: &HashMap<u32, CpuSnapshot>) -> f64 {
    let none = CpuSnapshot::default();
    after
        .iter()
        .map(|(pid, snapshot)| snapshot.secs_since(before.get(pid).unwrap_or(&none)))
        .sum()
}

/// Samples memory in the background: the largest sums seen and the last one.
pub struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<(Memory, Memory)>,
}

impl Sampler {
    pub fn start(pids: Pids, every: Duration) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let (mut peak, mut last) = (Memory::default(), Memory::default());
            let mut ticks = tokio::time::interval(every);
            while !stopped.is_cancelled() {
                tokio::select! {
                    () = stopped.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                last = pids.memory();
                peak.rss_kib = peak.rss_kib.max(last.rss_kib);
                peak.pss_kib = peak.pss_kib.max(last.pss_kib);
            }
            (peak, last)
        });
        Self { stop, task }
    }

    /// Takes one last sample and returns (peak, last).
    pub async fn finish(self) -> (Memory, Memory) {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// The machine's 1-minute load average, to note how busy it was.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
