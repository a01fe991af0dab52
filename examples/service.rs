//! The service example, on the default runtime (a thread pool, no async runtime needed).
//!
//! Until the lifecycle lands, this is the runtime layer at work: it starts a few "components" as
//! tasks, gathers their start-up results (failing fast if one fails), keeps a background worker
//! running, signals shutdown with an `Event`, and drains every task before it exits.
//!
//! ```text
//! cargo run --example service
//! ```

use std::time::Duration;

use asynchronously::rt::default_runtime;
use asynchronously::{Event, strict_gather_spawned, wait_for_all_other_tasks};

fn main() {
    let rt = default_runtime();
    println!("runtime: {rt:?}");
    futures::executor::block_on(async {
        // Start three components in parallel; the first failure would cancel the others.
        let names = ["store", "http", "worker"];
        let started = strict_gather_spawned(
            &rt,
            names.map(|name| {
                let rt = rt.clone();
                async move {
                    rt.sleep(Duration::from_millis(20)).await; // connecting, binding, ...
                    println!("started {name}");
                    Ok::<_, String>(name)
                }
            }),
        )
        .await
        .expect("every component starts");
        println!("all started: {started:?}");

        // A background worker that runs until shutdown.
        let shutdown = Event::new();
        rt.spawn({
            let (rt, shutdown) = (rt.clone(), shutdown.clone());
            async move {
                let mut ticks = 0_u32;
                while !shutdown.is_set() {
                    ticks += 1;
                    println!("worker tick {ticks}");
                    rt.sleep(Duration::from_millis(50)).await;
                }
                println!("worker stopped after {ticks} ticks");
            }
        })
        .detach();

        rt.sleep(Duration::from_millis(200)).await;
        println!("shutting down: {} task(s) live", rt.live_tasks());
        shutdown.set();
        wait_for_all_other_tasks().await;
        println!("drained: {} task(s) live", rt.live_tasks());
    });
}
