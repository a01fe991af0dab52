//! Real signals, in a real process: the service example, built by `cargo test` beside this
//! test, is started as a child process and sent SIGTERM and SIGINT with `kill`.
#![cfg(all(unix, feature = "signal"))]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a step may take before the test fails instead of hanging (CI has 2 busy cores).
const STEP: Duration = Duration::from_secs(30);

/// The example's binary: `target/<profile>/examples/service`, next to this test's `deps/`.
fn example() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile = test.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile.join("examples").join("service");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test` builds it (with the feature `signal`); \
         `cargo build --example service` does too",
        binary.display()
    );
    binary
}

/// The example, running, with its log lines (stderr) coming through a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(example())
            .args(args)
            .env("RUST_LOG", "info,asynchronously=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a log line that contains `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + STEP;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.log.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        panic!(
            "no log line with `{needle}` in {STEP:?}:\n{}",
            self.log.join("\n")
        );
    }

    fn kill(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits for the exit: its code, its stdout (the report), and the whole log.
    fn exit(mut self) -> (i32, String, Vec<String>) {
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the service did not exit in {STEP:?}:\n{}",
                    self.log.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut report = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut report)
            .unwrap();
        // The rest of the log: the reader thread ends at the end of stderr.
        while let Ok(line) = self.lines.recv_timeout(STEP) {
            self.log.push(line);
        }
        (status.code().expect("exited, not killed"), report, self.log)
    }
}

/// Where the first log line containing `needle` is.
fn at(log: &[String], needle: &str) -> usize {
    log.iter()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in:\n{}", log.join("\n")))
}

#[test]
fn sigterm_shuts_the_example_down_in_reverse_order_with_exit_code_0() {
    let mut service = Running::start(&["--connect-failures", "0"]);
    service.wait_for("app: up, running until shutdown");
    service.kill("-TERM");
    let (code, report, log) = service.exit();
    assert_eq!(code, 0, "{report}\n{}", log.join("\n"));
    assert!(
        report.starts_with("SIGTERM: clean, exit code 0"),
        "{report}"
    );
    for dependent in ["server", "worker", "health"] {
        // Each part is dropped before its deinit, and each deinit ends before the store's.
        assert!(
            at(&log, &format!("{dependent}: deinit finished")) < at(&log, "store: deinit started")
        );
        assert!(
            report.contains(&format!("\n  {dependent}: deinit took ")),
            "{report}"
        );
    }
    assert!(at(&log, "server: run stopped") < at(&log, "server: deinit started"));
    assert!(at(&log, "store: deinit finished") < at(&log, "app: deinit finished"));
}

#[test]
fn a_second_sigint_forces_a_hanging_shutdown_with_exit_code_130() {
    let mut service = Running::start(&[
        "--connect-failures",
        "0",
        "--hang-deinit",
        "store",
        "--shutdown-timeout",
        "60",
    ]);
    service.wait_for("app: up, running until shutdown");
    service.kill("-INT");
    service.wait_for("store: deinit hangs on request");
    let second = Instant::now();
    service.kill("-INT");
    let (code, report, log) = service.exit();
    let took = second.elapsed();
    assert_eq!(code, 130, "{report}\n{}", log.join("\n"));
    assert!(
        took < Duration::from_secs(1),
        "exited {took:?} after the second signal"
    );
    assert!(
        report.starts_with(
            "SIGINT: shutdown forced by a second signal; still in deinit: store, exit code 130"
        ),
        "{report}"
    );
    assert!(report.contains("\n  store: deinit abandoned"), "{report}");
}

#[test]
fn the_deadline_ends_a_hanging_shutdown_with_exit_code_1() {
    let mut service = Running::start(&[
        "--connect-failures",
        "0",
        "--hang-deinit",
        "worker",
        "--shutdown-timeout",
        "0.2",
    ]);
    service.wait_for("app: up, running until shutdown");
    service.kill("-TERM");
    let (code, report, log) = service.exit();
    assert_eq!(code, 1, "{report}\n{}", log.join("\n"));
    assert!(
        report.starts_with("SIGTERM: shutdown timed out; still in deinit: worker, exit code 1"),
        "{report}"
    );
    assert!(
        !log.iter()
            .any(|line| line.contains("store: deinit started")),
        "the store waits for the worker"
    );
}
