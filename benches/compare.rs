//! Every primitive beside its nearest peer, in one process: `cargo bench --bench compare`.
//!
//! Each scenario runs ours and the peer alternately (the order swapped every round), after one
//! warm-up run of each, and compares the medians of at least `ROUNDS` runs (more for a quick
//! scenario, up to a time budget). The machine is noisy, so only
//! the ratio of two medians taken side by side means anything. Prints one line per scenario:
//!
//! `<scenario> ours=<x> peer=<y> ratio=<ours/peer> goal<=<g> ok|MISS`
//!
//! where x and y are µs per item, ms (lateness), or bytes per item, as the scenario's unit says;
//! then `compare: K ok, M MISS`.

mod instructions;
mod scenarios;

use std::alloc::System;
use std::time::{Duration, Instant};

use scenarios::{Scenario, Unit};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// At least this many runs of each side...
const ROUNDS: usize = 9;
/// ...and more, up to `MAX_ROUNDS`, until the runs of a scenario took this long: a quick
/// scenario's median is then taken over many runs, which the machine's noise moves less.
const BUDGET: Duration = Duration::from_secs(2);
const MAX_ROUNDS: usize = 201;

fn net_bytes(f: &mut dyn FnMut()) -> f64 {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    // A realloc's growth or shrink is already in `bytes_allocated` / `bytes_deallocated`.
    (change.bytes_allocated as f64) - (change.bytes_deallocated as f64)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn run(scenario: &mut Scenario) -> bool {
    (scenario.ours)();
    (scenario.theirs)();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for round in 0..MAX_ROUNDS {
        if round >= ROUNDS && started.elapsed() >= BUDGET {
            break;
        }
        if round % 2 == 0 {
            ours.push((scenario.ours)());
            theirs.push((scenario.theirs)());
        } else {
            theirs.push((scenario.theirs)());
            ours.push((scenario.ours)());
        }
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let (scale, unit) = match scenario.unit {
        Unit::MicrosPerItem => (1e6 / scenario.items as f64, "µs/item"),
        Unit::Millis => (1e3, "ms"),
        Unit::BytesPerItem => (1.0 / scenario.items as f64, "B/item"),
    };
    let ratio = ours / theirs;
    let ok = ratio <= scenario.goal;
    println!(
        "{} [{unit}, vs {}] ours={:.4} peer={:.4} ratio={ratio:.2} goal<={} {}",
        scenario.name,
        scenario.peer,
        ours * scale,
        theirs * scale,
        scenario.goal,
        if ok { "ok" } else { "MISS" }
    );
    ok
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name, side] = &args[..] {
        if flag == "--count" {
            instructions::count(scenarios::timed_scenarios(), name, side);
            return std::process::ExitCode::SUCCESS;
        }
    }
    // `cargo bench` passes `--bench`; any other argument filters the scenarios by name.
    let filter: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .collect();
    if args.iter().any(|a| a == "--instructions") {
        instructions::compare(&scenarios::timed_scenarios(), &filter);
        return std::process::ExitCode::SUCCESS;
    }
    let mut all = scenarios::timed_scenarios();
    all.push(scenarios::periodic_lateness());
    all.push(scenarios::bytes::bytes_per_idle_periodic(net_bytes));
    all.push(scenarios::bytes::bytes_per_spawned_task(net_bytes));
    all.push(scenarios::structured::bytes_per_child_token(net_bytes));
    all.push(scenarios::structured::bytes_per_tracked_task(net_bytes));
    let (mut ok, mut miss) = (0, 0);
    for scenario in all.iter_mut() {
        if !filter.is_empty() && !filter.iter().any(|f| scenario.name.contains(f.as_str())) {
            continue;
        }
        if run(scenario) {
            ok += 1;
        } else {
            miss += 1;
        }
    }
    println!("compare: {ok} ok, {miss} MISS");
    std::process::ExitCode::SUCCESS
}
