//! The seed's Quick Start as a running service, on the default runtime (a thread pool: no async
//! runtime needed).
//!
//! A store, a TCP server that answers from it, a worker and a health line come up in dependency
//! order (all after the store), run until Ctrl-C, SIGTERM or `--for SECONDS`, and go down in
//! reverse within a deadline; then the report (the cause, each deinit's time) is printed, and the
//! exit code is the report's (0 clean, 1 failed, 130 forced by a second Ctrl-C). The store's first
//! connection is refused twice (`--connect-failures N`) and retried; the server's accept loop
//! and the worker are `on_run` parts, the health line a `Periodic`. Every phase is logged.
//!
//! ```text
//! cargo run --example service                      # until Ctrl-C (or SIGTERM)
//! cargo run --example service -- --for 2           # for two seconds
//! cargo run --example service -- --port 8080       # on a fixed port (default: ephemeral)
//! cargo run --example service -- --fail-init server  # see the rollback
//! cargo run --example service -- --connect-failures 9  # the store gives up after 5 retries
//! cargo run --example service -- --hang-deinit store   # see the deadline (or Ctrl-C twice)
//! ```
//!
//! While it runs: `printf 'greeting\n' | nc 127.0.0.1 PORT`, or `curl 127.0.0.1:PORT/jobs`.

// `Server::addr` and `Store::get` are for the integration test (tests/service.rs).
#[allow(dead_code)]
mod app;

use std::process::ExitCode;
use std::time::Duration;

use asynchronously::lifecycle::Service;
use asynchronously::rt::default_runtime;

use app::{App, Config};

const USAGE: &str = "usage: service [--port PORT] [--for SECONDS] \
    [--fail-init store|server|worker] [--connect-failures N] \
    [--hang-deinit store|server|worker|health] [--shutdown-timeout SECONDS]";

struct Args {
    config: Config,
    run_for: Option<Duration>,
    shutdown_timeout: Duration,
}

fn seconds(name: &str, value: String) -> Result<Duration, String> {
    let seconds: f64 = value.parse().map_err(|e| format!("{name}: {e}"))?;
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{name}: {e}"))
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    // The store's first connection is refused twice by default, to show the retry.
    let mut parsed = Args {
        config: Config {
            connect_failures: 2,
            ..Config::default()
        },
        run_for: None,
        shutdown_timeout: Duration::from_secs(5),
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                parsed.config.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--for" => parsed.run_for = Some(seconds("--for", value("--for")?)?),
            "--shutdown-timeout" => {
                parsed.shutdown_timeout =
                    seconds("--shutdown-timeout", value("--shutdown-timeout")?)?
            }
            "--fail-init" => parsed.config.fail_init = Some(value("--fail-init")?),
            "--hang-deinit" => parsed.config.hang_deinit = Some(value("--hang-deinit")?),
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

    let mut service = Service::new(&app)
        .catch_signals()
        .shutdown_timeout(args.shutdown_timeout)
        .runtime(&rt);
    if let Some(duration) = args.run_for {
        service = service.shutdown_on(rt.sleep(duration));
    }
    let report = futures::executor::block_on(service.run_to_report());
    println!("{report}");
    ExitCode::from(report.exit_code())
}
