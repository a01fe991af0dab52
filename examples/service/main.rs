//! The seed's Quick Start as a running service, on the default runtime (a thread pool: no async
//! runtime needed).
//!
//! A store, a TCP server that answers from it, a worker and a health line come up in dependency
//! order (all after the store), run until Ctrl-C or `--for SECONDS`, and go down in reverse. The
//! store's first connection is refused twice (`--connect-failures N`) and retried; the worker
//! and the health line are `Periodic` jobs. Every phase is logged.
//!
//! ```text
//! cargo run --example service                      # until Ctrl-C
//! cargo run --example service -- --for 2           # for two seconds
//! cargo run --example service -- --port 8080       # on a fixed port (default: ephemeral)
//! cargo run --example service -- --fail-init server  # see the rollback
//! cargo run --example service -- --connect-failures 9  # the store gives up after 5 retries
//! ```
//!
//! While it runs: `printf 'greeting\n' | nc 127.0.0.1 PORT`, or `curl 127.0.0.1:PORT/jobs`.

// `Server::addr` and `Store::get` are for the integration test (tests/service.rs).
#[allow(dead_code)]
mod app;

use std::process::ExitCode;
use std::time::Duration;

use asynchronously::Event;
use asynchronously::lifecycle::run_until;
use asynchronously::rt::default_runtime;
use futures::FutureExt;

use app::{App, Config};

const USAGE: &str = "usage: service [--port PORT] [--for SECONDS] \
    [--fail-init store|server|worker] [--connect-failures N]";

struct Args {
    config: Config,
    run_for: Option<Duration>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    // The store's first connection is refused twice by default, to show the retry.
    let mut parsed = Args {
        config: Config {
            connect_failures: 2,
            ..Config::default()
        },
        run_for: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                parsed.config.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--for" => {
                let seconds: f64 = value("--for")?.parse().map_err(|e| format!("--for: {e}"))?;
                parsed.run_for =
                    Some(Duration::try_from_secs_f64(seconds).map_err(|e| format!("--for: {e}"))?);
            }
            "--fail-init" => parsed.config.fail_init = Some(value("--fail-init")?),
            "--connect-failures" => {
                parsed.config.connect_failures = value("--connect-failures")?
                    .parse()
                    .map_err(|e| format!("--connect-failures: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,asynchronously=debug"),
    )
    .init();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let rt = default_runtime();
    let app = match App::new(args.config, &rt) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };

    let ctrl_c = Event::new();
    let handler = ctrl_c.clone();
    if let Err(error) = ctrlc::set_handler(move || handler.set()) {
        log::warn!("Ctrl-C will not stop the service gracefully: {error}");
    }
    let shutdown = {
        let rt = rt.clone();
        async move {
            let timer = match args.run_for {
                Some(duration) => rt.sleep(duration).left_future(),
                None => std::future::pending().right_future(),
            };
            futures::future::select(ctrl_c.wait(), Box::pin(timer)).await;
            log::info!("shutdown requested");
        }
    };

    match futures::executor::block_on(run_until(&app, shutdown)) {
        Ok(()) => {
            log::info!("service stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(error) => {
            let mut message = format!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
