//! Criterion groups, one per primitive, ours beside the peer: `cargo bench --bench primitives`.
//! (`benches/compare.rs` prints the ratios against the goals.)

#[allow(dead_code)]
mod instructions;
mod scenarios;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn primitives(c: &mut Criterion) {
    for mut scenario in scenarios::timed_scenarios() {
        let mut group = c.benchmark_group(scenario.name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let ours = &mut scenario.ours;
        group.bench_function(BenchmarkId::new("asynchronously", scenario.items), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| Duration::from_secs_f64(ours())).sum())
        });
        let theirs = &mut scenario.theirs;
        group.bench_function(BenchmarkId::new(scenario.peer, scenario.items), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| Duration::from_secs_f64(theirs())).sum())
        });
        group.finish();
    }
}

criterion_group!(benches, primitives);
criterion_main!(benches);
