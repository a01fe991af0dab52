//! A library that cannot pick a runtime for its users: it takes the caller's `&Runtime`, runs its
//! work in parallel on it with a `TaskGroup`, and retries a flaky call on its timer. The same
//! function then runs on tokio, on smol and on the built-in thread pool, in one `main`.
//!
//! ```text
//! cargo run --example library --features tokio,smol
//! ```
//!
//! A library's `Cargo.toml` turns no runtime on:
//!
//! ```toml
//! asynchronously = { version = "0.1", default-features = false }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use asynchronously::rt::Runtime;
use asynchronously::{TaskGroup, retry};

/// The library's own error.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("shard {0} refused the connection")]
    Refused(u32),
}

/// A pretend remote shard: refuses its first connection, then answers with its size.
struct Shard {
    id: u32,
    attempts: AtomicU32,
}

impl Shard {
    async fn size(&self) -> Result<u64, FetchError> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(FetchError::Refused(self.id));
        }
        Ok(u64::from(self.id) * 100)
    }
}

/// The library's entry point: the total size of `shards`, each fetched in parallel on the
/// caller's runtime, each retried up to 3 times, 10 ms apart, on that runtime's timer.
///
/// # Errors
///
/// The first shard that still refused after its retries.
pub async fn total_size(rt: &Runtime, shards: u32) -> Result<u64, FetchError> {
    let mut group = TaskGroup::new(rt);
    for id in 1..=shards {
        let (rt, shard) = (
            rt.clone(),
            Arc::new(Shard {
                id,
                attempts: AtomicU32::new(0),
            }),
        );
        group.spawn(async move {
            retry(|| shard.size())
                .attempts_limit(3)
                .sleep(Duration::from_millis(10))
                .runtime(&rt)
                .await
        });
    }
    // The first error aborts the other fetches; the sizes come back in spawn order.
    Ok(group.try_join_all().await?.into_iter().sum())
}

fn main() {
    // tokio: the caller's runtime is a tokio runtime.
    let tokio = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let total = tokio.block_on(async { total_size(&Runtime::tokio(), 4).await });
    println!("on tokio: {total:?}");
    assert_eq!(total.unwrap(), 1_000);

    // smol: its global executor.
    let total = smol::block_on(total_size(&Runtime::smol(), 4));
    println!("on smol: {total:?}");
    assert_eq!(total.unwrap(), 1_000);

    // No async runtime at all: the built-in thread pool, driven by a plain `block_on`.
    let pool = Runtime::thread_pool();
    let total = futures::executor::block_on(total_size(&pool, 4));
    println!("on the thread pool: {total:?}");

    assert_eq!(total.unwrap(), 1_000);
}
