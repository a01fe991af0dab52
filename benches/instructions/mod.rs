//! Instruction counts, which do not vary with the machine: `cargo bench --bench compare --
//! --instructions [filter]`.
//!
//! Each side of each scenario runs in a process of its own under valgrind's callgrind, with
//! instrumentation off (`--instr-atstart=no`). The side runs once to warm up, then once more with
//! instrumentation switched on around its measured part (what `timed` times) by callgrind's
//! client requests, so that the count covers every thread (a tokio worker's too) and nothing
//! else: no set-up, no warm-up, no teardown. The count per item of each side, and their ratio,
//! are printed like the timed rows.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::scenarios::Scenario;

/// Set for the measured run of `--count`.
static MEASURING: AtomicBool = AtomicBool::new(false);

/// Whether this run is measured; if so, instrumentation starts now.
pub fn measuring() -> bool {
    let measuring = MEASURING.swap(false, Ordering::SeqCst);
    if measuring {
        client_request(START_INSTRUMENTATION);
    }
    measuring
}

pub fn stop() {
    client_request(STOP_INSTRUMENTATION);
}

/// Callgrind's client requests (valgrind's `callgrind.h`): the tool base `'C' 'T'`, plus an
/// offset.
const CALLGRIND_BASE: u64 = ((b'C' as u64) << 24) | ((b'T' as u64) << 16);
const START_INSTRUMENTATION: u64 = CALLGRIND_BASE + 4;
const STOP_INSTRUMENTATION: u64 = CALLGRIND_BASE + 5;

/// Valgrind's client request on x86-64: a sequence of no-ops outside valgrind (the result is
/// the default, 0), which valgrind recognises.
#[cfg(target_arch = "x86_64")]
fn client_request(request: u64) {
    let args: [u64; 6] = [request, 0, 0, 0, 0, 0];
    let mut result: u64 = 0;
    // SAFETY: the sequence rotates rdi by 128 bits in all (it ends as it began) and swaps rbx
    // with itself; valgrind reads `args` through rax and writes its answer to rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            inout("rdi") 0_u64 => _,
            options(nostack),
        );
    }
    let _ = result;
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(_request: u64) {}

/// `--count <scenario> <ours|peer>`: warms up, then runs the measured run.
pub fn count(mut all: Vec<Scenario>, name: &str, side: &str) {
    let scenario = all
        .iter_mut()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario is named `{name}`"));
    let run = match side {
        "ours" => &mut scenario.ours,
        "peer" => &mut scenario.theirs,
        other => panic!("a side is `ours` or `peer`, not `{other}`"),
    };
    run();
    MEASURING.store(true, Ordering::SeqCst);
    // `COMPARE_REPEAT=n`: n runs, for a profiler that samples (perf) rather than counts.
    let repeat = std::env::var("COMPARE_REPEAT").map_or(1, |n| n.parse().expect("a count"));
    for _ in 0..repeat {
        run();
    }
}

/// `--instructions [filter]`: counts each side of each timed scenario in its own process.
pub fn compare(all: &[Scenario], filter: &[String]) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("compare: --instructions needs valgrind (apt-get install valgrind)");
        std::process::exit(1);
    }
    let exe = std::env::current_exe().expect("the bench's own path");
    let dir = std::env::temp_dir().join(format!("compare-instructions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for callgrind's output");
    for scenario in all {
        if !filter.is_empty() && !filter.iter().any(|f| scenario.name.contains(f.as_str())) {
            continue;
        }
        let ours = instructions(&exe, &dir, scenario.name, "ours") / scenario.items as f64;
        let peer = instructions(&exe, &dir, scenario.name, "peer") / scenario.items as f64;
        println!(
            "{} [instructions/item, vs {}] ours={ours:.0} peer={peer:.0} ratio={:.2}",
            scenario.name,
            scenario.peer,
            ours / peer
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The instructions of one side's measured run, as callgrind counts them.
fn instructions(exe: &Path, dir: &Path, name: &str, side: &str) -> f64 {
    let out = dir.join(format!("{side}.out"));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--instr-atstart=no", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["--count", name, side])
        .stdout(Stdio::null())
        .status()
        .expect("valgrind runs");
    assert!(status.success(), "callgrind failed on `{name}` ({side})");
    let text = std::fs::read_to_string(&out).expect("callgrind's output");
    // `totals:` gives the events of the whole run (`summary:` those of the last dump); the only
    // event is Ir.
    let total = text
        .lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .and_then(|counts| counts.split_whitespace().next()?.parse::<f64>().ok())
        .expect("callgrind's totals");
    let _ = std::fs::remove_file(&out);
    total
}
