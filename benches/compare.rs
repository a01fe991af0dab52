//! Every primitive beside its nearest peer, in one process: `cargo bench --bench compare`.
//!
//! Each scenario runs ours and the peer alternately (the order swapped every round), after one
//! warm-up run of each, and compares the medians of `ROUNDS` runs. The machine is noisy, so only
//! the ratio of two medians taken side by side means anything. Prints one line per scenario:
//!
//! `<scenario> ours=<x> peer=<y> ratio=<ours/peer> goal<=<g> ok|MISS`
//!
//! where x and y are µs per item, ms (lateness), or bytes per item, as the scenario's unit says;
//! then `compare: K ok, M MISS`.

mod scenarios;

use std::alloc::System;

use scenarios::{Scenario, Unit};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ROUNDS: usize = 9;

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
    for round in 0..ROUNDS {
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

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters the scenarios by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mut all = scenarios::timed_scenarios();
    all.push(scenarios::periodic_lateness());
    all.push(scenarios::bytes_per_idle_periodic(net_bytes));
    all.push(scenarios::bytes_per_spawned_task(net_bytes));
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
}
