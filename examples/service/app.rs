//! The service's components: a store, a TCP server that answers from it, a worker and a health
//! line.
//!
//! Shared by the example (`main.rs`) and its integration test (`tests/service.rs`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use asynchronously::children;
use asynchronously::lifecycle::{
    BoxError, Children, Component, ComponentExt, Lifecycle, LifecycleError,
};
use asynchronously::rt::Runtime;
use asynchronously::{Periodic, TaskGroup, retry};
use futures::FutureExt;
use futures::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use smol::net::{TcpListener, TcpStream};

/// What the command line sets.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The port to listen on; 0 for an ephemeral one.
    pub port: u16,
    /// The component whose init fails on purpose, to show the rollback.
    pub fail_init: Option<String>,
    /// How many times the store's first connection is refused before it succeeds (retried).
    pub connect_failures: u32,
    /// The component whose deinit hangs on purpose, to show the shutdown's deadline.
    pub hang_deinit: Option<String>,
}

impl Config {
    fn check_fail(&self, name: &str) -> Result<(), BoxError> {
        match &self.fail_init {
            Some(failing) if failing == name => {
                Err(format!("{name}: init fails on request (--fail-init {name})").into())
            }
            _ => Ok(()),
        }
    }

    /// Never returns if `name`'s deinit is to hang (`--hang-deinit NAME`).
    async fn hang_if_asked(&self, name: &str) {
        if self.hang_deinit.as_deref() == Some(name) {
            log::warn!("{name}: deinit hangs on request (--hang-deinit {name})");
            std::future::pending::<()>().await;
        }
    }
}

/// An in-memory key-value store: the "database" of the Quick Start.
pub struct Store {
    lifecycle: Lifecycle,
    config: Config,
    rt: Runtime,
    connect_attempts: AtomicU32,
    data: Mutex<HashMap<String, String>>,
}

impl Store {
    fn new(config: &Config, rt: &Runtime) -> Self {
        Self {
            lifecycle: Lifecycle::new(),
            config: config.clone(),
            rt: rt.clone(),
            connect_attempts: AtomicU32::new(0),
            data: Mutex::new(HashMap::new()),
        }
    }

    /// A connection to the (pretend) database: refused the first `connect_failures` times.
    async fn connect(&self) -> std::io::Result<()> {
        let attempt = self.connect_attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if attempt <= self.config.connect_failures {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!("connection attempt {attempt} refused"),
            ));
        }
        log::info!("store: connected on attempt {attempt}");
        Ok(())
    }

    /// How many times the store tried to connect.
    pub fn connect_attempts(&self) -> u32 {
        self.connect_attempts.load(Ordering::SeqCst)
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.data.lock().unwrap().get(key).cloned()
    }

    fn set(&self, key: &str, value: String) {
        self.data.lock().unwrap().insert(key.to_owned(), value);
    }
}

impl Component for Store {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn name(&self) -> Cow<'_, str> {
        "store".into()
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        self.config.check_fail("store")?;
        // A refused connection is retried; any other error is not. The retry borrows `self`, and
        // is `Send`, as a hook's future must be.
        retry(|| self.connect())
            .attempts_limit(5)
            .sleep(Duration::from_millis(200))
            .when(|error| error.kind() == std::io::ErrorKind::ConnectionRefused)
            .notify(|error, attempt| log::warn!("store: {error}; retrying in {:?}", attempt.sleep))
            .runtime(&self.rt)
            .await?;
        self.set("greeting", "hello from asynchronously".to_owned());
        self.set("jobs", "0".to_owned());
        log::info!(
            "store: opened with {} keys",
            self.data.lock().unwrap().len()
        );
        Ok(())
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        self.config.hang_if_asked("store").await;
        let keys = std::mem::take(&mut *self.data.lock().unwrap()).len();
        log::info!("store: closed, {keys} keys flushed");
        Ok(())
    }
}

/// Answers one request per connection from the store: a line `KEY` gets the value, and
/// `GET /KEY HTTP/1.1` an HTTP response with it. It listens from its init; its `on_run` is the
/// accept loop.
pub struct Server {
    lifecycle: Lifecycle,
    config: Config,
    rt: Runtime,
    store: Arc<Store>,
    addr: OnceLock<SocketAddr>,
    /// Bound by init, closed by deinit.
    listener: Mutex<Option<TcpListener>>,
}

impl Server {
    /// Where the server listens, once it is up.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }
}

impl Component for Server {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn name(&self) -> Cow<'_, str> {
        "server".into()
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        self.config.check_fail("server")?;
        let listener = TcpListener::bind(("127.0.0.1", self.config.port)).await?;
        let addr = listener.local_addr()?;
        let _ = self.addr.set(addr);
        *self.listener.lock().unwrap() = Some(listener);
        log::info!("server: listening on {addr}");
        Ok(())
    }
    /// The accept loop: each connection is a task of a group, which is dropped with the loop as
    /// the server's deinit starts, and aborts them.
    async fn on_run(&self) -> Result<(), BoxError> {
        let listener = self.listener.lock().unwrap().clone();
        let listener = listener.ok_or("the server is not listening")?;
        let mut connections = TaskGroup::new(&self.rt);
        loop {
            let (stream, peer) = listener.accept().await?;
            while connections.try_join_next().is_some() {} // forget the finished ones
            let (store, timer) = (self.store.clone(), self.rt.clone());
            connections.spawn(async move {
                let answer = answer(stream, &store).fuse();
                let deadline = timer.sleep(Duration::from_secs(5)).fuse();
                futures::pin_mut!(answer, deadline);
                futures::select! {
                    result = answer => if let Err(error) = result {
                        log::warn!("server: connection from {peer}: {error}");
                    },
                    () = deadline => log::warn!("server: connection from {peer} timed out"),
                }
            });
        }
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        self.config.hang_if_asked("server").await;
        drop(self.listener.lock().unwrap().take());
        log::info!("server: stopped listening");
        Ok(())
    }
}

async fn answer(stream: TcpStream, store: &Store) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.clone());
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut writer = stream;
    let request = line.trim();
    if let Some(path) = request.strip_prefix("GET ") {
        let key = path
            .split_whitespace()
            .next()
            .unwrap_or("/")
            .trim_start_matches('/');
        let (status, body) = match store.get(key) {
            Some(value) => ("200 OK", value),
            None => ("404 Not Found", format!("no key `{key}`")),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(response.as_bytes()).await?;
    } else {
        let value = store
            .get(request)
            .unwrap_or_else(|| format!("no key `{request}`"));
        writer.write_all(format!("{value}\n").as_bytes()).await?;
    }
    writer.flush().await
}

/// A [`Periodic`] that a component starts in `on_init` and stops (and waits for) in
/// `on_deinit`.
#[derive(Default)]
struct Running(Mutex<Option<Periodic>>);

impl Running {
    fn keep(&self, periodic: Periodic) {
        *self.0.lock().unwrap() = Some(periodic);
    }

    async fn stop(&self) {
        let periodic = self.0.lock().unwrap().take();
        if let Some(periodic) = periodic {
            periodic.stop().await;
        }
    }
}

/// A background worker: its `on_run` does a job every half second and counts them in the store.
pub struct Worker {
    lifecycle: Lifecycle,
    config: Config,
    rt: Runtime,
    store: Arc<Store>,
    jobs: AtomicU64,
}

impl Component for Worker {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn name(&self) -> Cow<'_, str> {
        "worker".into()
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        self.config.check_fail("worker")
    }
    async fn on_run(&self) -> Result<(), BoxError> {
        loop {
            self.rt.sleep(Duration::from_millis(500)).await;
            let done = self.jobs.fetch_add(1, Ordering::SeqCst) + 1;
            self.store.set("jobs", done.to_string());
            log::info!("worker: job {done} done");
        }
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        self.config.hang_if_asked("worker").await;
        log::info!(
            "worker: stopped after {} jobs",
            self.jobs.load(Ordering::SeqCst)
        );
        Ok(())
    }
}

/// Logs a health line every second.
pub struct Health {
    lifecycle: Lifecycle,
    config: Config,
    rt: Runtime,
    store: Arc<Store>,
    periodic: Running,
}

impl Component for Health {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn name(&self) -> Cow<'_, str> {
        "health".into()
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        let store = self.store.clone();
        let line = move || {
            let jobs = store.get("jobs").unwrap_or_default();
            log::info!("health: ok, {jobs} jobs done");
        };
        let periodic = Periodic::builder(line, Duration::from_secs(1))
            .name("health")
            .runtime(&self.rt)
            .start()?;
        self.periodic.keep(periodic);
        Ok(())
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        self.config.hang_if_asked("health").await;
        self.periodic.stop().await;
        Ok(())
    }
}

/// The whole service: the root of the tree.
pub struct App {
    lifecycle: Lifecycle,
    /// The store, shared with the server and the worker.
    pub store: Arc<Store>,
    /// The TCP server.
    pub server: Server,
    /// The background worker.
    pub worker: Worker,
    /// The health line.
    pub health: Health,
}

impl App {
    /// The service on `rt`, its dependencies declared: the server, the worker and the health
    /// line need the store.
    pub fn new(config: Config, rt: &Runtime) -> Result<Self, LifecycleError> {
        let store = Arc::new(Store::new(&config, rt));
        let app = Self {
            lifecycle: Lifecycle::new(),
            server: Server {
                lifecycle: Lifecycle::new(),
                config: config.clone(),
                rt: rt.clone(),
                store: store.clone(),
                addr: OnceLock::new(),
                listener: Mutex::new(None),
            },
            worker: Worker {
                lifecycle: Lifecycle::new(),
                config: config.clone(),
                rt: rt.clone(),
                store: store.clone(),
                jobs: AtomicU64::new(0),
            },
            health: Health {
                lifecycle: Lifecycle::new(),
                config,
                rt: rt.clone(),
                store: store.clone(),
                periodic: Running::default(),
            },
            store,
        };
        app.server.depends_on(&*app.store)?;
        app.worker.depends_on(&*app.store)?;
        app.health.depends_on(&*app.store)?;
        Ok(app)
    }
}

impl Component for App {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn name(&self) -> Cow<'_, str> {
        "app".into()
    }
    fn children(&self) -> Children<'_> {
        children![self.store, self.server, self.worker, self.health]
    }
}
