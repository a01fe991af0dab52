//! The service example's components, end to end: up, answering over TCP, down.

mod common;

#[path = "../examples/service/app.rs"]
#[allow(dead_code)]
mod app;

use std::time::Duration;

use asynchronously::lifecycle::{Component, ComponentExt, LifecycleError, Service};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use app::{App, Config};
use common::until;

async fn ask(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

each_runtime! {
    /// Run as the example runs it (a `Service`): the server's accept loop and the worker are
    /// `on_run` parts, which go with the shutdown.
    // A real socket, on smol's reactor, which miri cannot open.
    #[cfg_attr(miri, ignore)]
    async fn the_service_comes_up_answers_and_goes_down(rt, clock) {
        let app = std::sync::Arc::new(App::new(Config::default(), &rt).unwrap());
        let stop = asynchronously::Event::new();
        let service = rt.spawn({
            let (app, stop, rt) = (app.clone(), stop.clone(), rt.clone());
            async move { Service::new(&*app).shutdown_on(stop.wait()).runtime(&rt).run().await }
        });
        until(|| app.lifecycle().init_phase().finished().is_set()).await;
        let addr = app.server.addr().expect("the server listens once it is up");
        assert_eq!(ask(addr, "greeting\n").await, "hello from asynchronously\n");
        assert_eq!(ask(addr, "nothing\n").await, "no key `nothing`\n");
        let http = ask(addr, "GET /greeting HTTP/1.1\r\n\r\n").await;
        assert!(http.starts_with("HTTP/1.1 200 OK\r\n"), "{http}");
        assert!(http.ends_with("\r\n\r\nhello from asynchronously"), "{http}");
        assert!(ask(addr, "GET /missing HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404 Not Found"));

        // The worker's part and the health line's Periodic sleep on the runtime's clock.
        common::sleepers(&clock, 2).await;
        clock.advance(Duration::from_millis(500));
        until(|| app.store.get("jobs").as_deref() == Some("1")).await;

        stop.set();
        let report = service.await.unwrap().unwrap();
        assert_eq!(report.phases.len(), 5, "{report}");
        // Down in reverse: the store closed after the server and the worker stopped.
        assert!(app.store.get("greeting").is_none());
        until(|| rt.live_tasks() == 0).await; // no task left behind
        assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
    }
}

each_runtime! {
    /// The store's first connection is refused twice: the retry, 200 ms apart on the clock,
    /// brings it up on the third attempt, and the service comes up.
    // A real socket, on smol's reactor, which miri cannot open.
    #[cfg_attr(miri, ignore)]
    async fn a_refused_connection_is_retried_at_start_up(rt, clock) {
        let config = Config { connect_failures: 2, ..Config::default() };
        let app = std::sync::Arc::new(App::new(config, &rt).unwrap());
        let up = rt.spawn({
            let app = app.clone();
            async move { app.init().await }
        });
        for attempt in 1..=2 {
            common::sleepers(&clock, 1).await; // the retry's sleep
            assert_eq!(app.store.connect_attempts(), attempt);
            clock.advance(Duration::from_millis(200));
            until(|| app.store.connect_attempts() == attempt + 1).await;
        }
        up.await.unwrap().unwrap();
        assert_eq!(app.store.get("greeting").as_deref(), Some("hello from asynchronously"));
        app.deinit().await.unwrap();
    }
}

each_runtime! {
    /// `--fail-init server`: init fails naming the server; the store, which came up, is rolled
    /// back by run_until.
    async fn a_failing_server_rolls_back_the_store(rt, _clock) {
        let config = Config { fail_init: Some("server".into()), ..Config::default() };
        let app = App::new(config, &rt).unwrap();
        let error = asynchronously::lifecycle::run_until(&app, std::future::pending()).await.unwrap_err();
        assert!(matches!(&error, LifecycleError::Failed { component, .. } if component == "server"), "{error:?}");
        assert!(app.store.lifecycle().deinit_phase().finished().is_set());
        assert!(app.store.get("greeting").is_none(), "the store was closed");
        until(|| rt.live_tasks() == 0).await;
    }
}
