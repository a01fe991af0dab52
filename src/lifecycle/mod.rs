//! Components that come up in dependency order and go down in reverse.
//!
//! Python's `AsyncInitable` and `AsyncDeinitable` in one trait, [`Component`]: embed a
//! [`Lifecycle`], implement the hooks you need ([`on_init`](Component::on_init),
//! [`on_deinit`](Component::on_deinit)), list the [`children`](Component::children) you own, and
//! declare dependencies once with [`depends_on`](ComponentExt::depends_on). Then one
//! [`init`](ComponentExt::init) on the root brings up the whole tree, children concurrently and
//! each after what it depends on, and one [`deinit`](ComponentExt::deinit) takes it down in
//! reverse. [`Service`] is the service main loop around both: each component's
//! [`on_run`](Component::on_run) part while it is up, shutdown triggers and signals, one
//! deadline, and a [`ShutdownReport`] ([`run_until`] is its short form).
//!
//! # Examples
//!
//! The seed's Quick Start: the HTTP server starts only after the database, and stops before it.
//!
//! ```
//! # futures::executor::block_on(async {
//! use asynchronously::children;
//! use asynchronously::lifecycle::{BoxError, Children, Component, ComponentExt, Lifecycle};
//!
//! #[derive(Default)]
//! struct Database { lifecycle: Lifecycle }
//!
//! impl Component for Database {
//!     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
//!     async fn on_init(&self) -> Result<(), BoxError> {
//!         Ok(()) // open the connection pool, run migrations
//!     }
//!     async fn on_deinit(&self) -> Result<(), BoxError> {
//!         Ok(()) // close the pool
//!     }
//! }
//!
//! #[derive(Default)]
//! struct HttpServer { lifecycle: Lifecycle }
//!
//! impl Component for HttpServer {
//!     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
//! }
//!
//! #[derive(Default)]
//! struct Context { lifecycle: Lifecycle, database: Database, http_server: HttpServer }
//!
//! impl Component for Context {
//!     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
//!     fn children(&self) -> Children<'_> { children![self.database, self.http_server] }
//! }
//!
//! let context = Context::default();
//! context.http_server.depends_on(&context.database)?;
//! context.init().await?;
//! // ... serve ...
//! context.deinit().await?;
//! assert!(context.database.lifecycle().deinit_phase().finished().is_set());
//! # Ok::<(), asynchronously::lifecycle::LifecycleError>(()) }).unwrap();
//! ```
//!
//! # Beyond the Python package
//!
//! - One [`depends_on`](ComponentExt::depends_on) gives both orders.
//! - A cycle of dependencies is [`LifecycleError::Cycle`], found before any hook runs, instead of
//!   a silent deadlock.
//! - A failing (or panicking) `on_init` cancels its siblings, and every phase waiting on it
//!   fails with [`LifecycleError::DependencyFailed`] instead of hanging.
//! - A child shared by two parents (a diamond) is initialised once, and both parents wait for it:
//!   "parent finished" always means "subtree finished".
//! - Per-component timeouts ([`Lifecycle::with_timeouts`]) give [`LifecycleError::TimedOut`].
//! - [`Service`] and [`run_until`] roll back, in reverse, what finished init when init fails.
//!
//! Deinit is best effort where init is strict: a failing `on_deinit` does not cancel its
//! siblings, and a deinit phase `after` a failed one still runs, so one failed close does not
//! leave the rest open. The first error is returned.
//!
//! # Logging
//!
//! Each phase step is logged at debug level (`database: init scheduled`, `started`,
//! `finished`), a second `init()` / `deinit()` call at warning level, as the Python package does.

use std::borrow::Cow;
use std::future::Future;

use futures::future::BoxFuture;

mod children;
mod error;
mod graph;
mod phase;
mod run;
mod service;

pub use self::children::{ChildSource, Children};
pub use self::error::{BoxError, LifecycleError, PhaseKind};
pub use self::phase::{Lifecycle, Phase};
pub use self::service::{PhaseTime, Service, ShutdownCause, ShutdownReport, Signal, run_until};

/// A part of a service with a lifecycle: Python's `AsyncInitable` and `AsyncDeinitable` in one.
///
/// Implement [`lifecycle`](Component::lifecycle) to point at the embedded [`Lifecycle`], and
/// whichever hooks you need: a component with only `on_init` is Python's init-only mixin, one
/// with only `on_deinit` its deinit-only one. The hooks take `&self`, so state they set up goes
/// behind interior mutability (a `Mutex`, `OnceLock`, or an async lock); components are
/// `Send + Sync` so that a tree can be initialised from any task.
///
/// Call the provided [`ComponentExt`] methods ([`init`](ComponentExt::init),
/// [`deinit`](ComponentExt::deinit), [`depends_on`](ComponentExt::depends_on)), not the hooks.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::sync::Mutex;
/// use asynchronously::lifecycle::{BoxError, Component, ComponentExt, Lifecycle};
///
/// #[derive(Default)]
/// struct FileManager {
///     lifecycle: Lifecycle,
///     stuck_uploads: Mutex<Vec<String>>,
/// }
///
/// impl Component for FileManager {
///     fn lifecycle(&self) -> &Lifecycle {
///         &self.lifecycle
///     }
///
///     async fn on_init(&self) -> Result<(), BoxError> {
///         self.stuck_uploads.lock().unwrap().clear(); // reset stuck uploads
///         Ok(())
///     }
/// }
///
/// let files = FileManager::default();
/// files.init().await?;
/// assert_eq!(files.name(), "FileManager");
/// # Ok::<(), asynchronously::lifecycle::LifecycleError>(()) }).unwrap();
/// ```
///
/// # Panics
///
/// A panic in a hook, or in a future given to [`Phase::wait_before`], fails that phase with
/// [`LifecycleError::Failed`] (the panic is its source) and unwinds no further. The accessors
/// (`lifecycle`, `name`, `children`) are called everywhere, synchronous methods included, and
/// must not panic: a panic in one unwinds into whoever called `init` or `deinit`.
pub trait Component: Send + Sync {
    /// The lifecycle state this component embeds.
    fn lifecycle(&self) -> &Lifecycle;

    /// The name used in logs and errors; by default the type's name without its module path.
    fn name(&self) -> Cow<'_, str> {
        short_type_name(std::any::type_name::<Self>())
    }

    /// The component's own initialisation, run after its dependencies and children finished
    /// init. Python's `_async_init`.
    fn on_init(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
        NoHook
    }

    /// The component's own de-initialisation, run after what depends on it finished deinit, and
    /// before its children's. Python's `_async_deinit`.
    fn on_deinit(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
        NoHook
    }

    /// The components this one owns; see [`children!`](crate::children). None by default.
    fn children(&self) -> Children<'_> {
        Children::none()
    }

    /// The component's long-running part (an accept loop, a consumer), which a [`Service`] runs:
    /// it starts once the component's init finished and is dropped as its deinit starts, after
    /// what depends on it finished deinit, so dependency order holds for it too. Pending forever
    /// by default.
    ///
    /// An `Ok` ends only this part. An `Err` or a panic starts the service's shutdown, and
    /// [`Service::run`] returns it after the deinit, as [`LifecycleError::Failed`] with phase
    /// [`PhaseKind::Run`]. `init()` and `deinit()` alone never call it.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use asynchronously::lifecycle::{BoxError, Component, Lifecycle, LifecycleError, PhaseKind, Service};
    ///
    /// #[derive(Default)]
    /// struct Consumer { lifecycle: Lifecycle, handled: AtomicU32 }
    ///
    /// impl Component for Consumer {
    ///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
    ///     async fn on_run(&self) -> Result<(), BoxError> {
    ///         for _ in 0..3 {
    ///             self.handled.fetch_add(1, Ordering::Relaxed); // handle a message
    ///         }
    ///         Err("the queue went away".into())
    ///     }
    /// }
    ///
    /// let consumer = Consumer::default();
    /// let error = Service::new(&consumer).run().await.unwrap_err();
    /// assert_eq!(error.to_string(), "component `Consumer` failed during run");
    /// assert!(matches!(error, LifecycleError::Failed { phase: PhaseKind::Run, .. }));
    /// assert_eq!(consumer.handled.load(Ordering::Relaxed), 3);
    /// assert!(consumer.lifecycle().deinit_phase().finished().is_set()); // shut down first
    /// # });
    /// ```
    fn on_run(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
        Idle
    }
}

/// The `on_run` of a component that has none: pending forever. A service recognises it by its
/// type and runs nothing for it (the "lifecycle" rows: a leaf costs no future of its own).
struct Idle;

impl Future for Idle {
    type Output = Result<(), BoxError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Pending
    }
}

/// Whether the hook `hook` returns the default future `D` ([`Idle`], [`NoHook`]), without
/// calling it. Its type cannot be compared by `TypeId` (a hook's future borrows, so it is not
/// `'static`); a zero-sized type named as ours is ours.
fn returns_default<'a, C: ?Sized + 'a, R, D>(_hook: impl Fn(&'a C) -> R) -> bool {
    std::mem::size_of::<R>() == 0 && std::any::type_name::<R>() == std::any::type_name::<D>()
}

/// The hook of a component that has none: done at once. Zero-sized, so that the box a run puts a
/// hook in allocates nothing for it (the "lifecycle init + deinit" rows).
struct NoHook;

impl Future for NoHook {
    type Output = Result<(), BoxError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// What every [`Component`] can do: Python's final `async_init` / `async_deinit`, and
/// dependencies declared once.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::lifecycle::{Component, ComponentExt, Lifecycle};
///
/// #[derive(Default)]
/// struct Queue { lifecycle: Lifecycle }
/// impl Component for Queue {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
/// }
///
/// let queue = Queue::default();
/// queue.init().await?;
/// queue.init().await?; // a second call logs a warning and does nothing
/// queue.deinit().await?;
/// # Ok::<(), asynchronously::lifecycle::LifecycleError>(()) }).unwrap();
/// ```
pub trait ComponentExt: Component {
    /// Initialises this component and its subtree.
    ///
    /// Sets `scheduled`, waits for every [`wait_before`](Phase::wait_before) future and
    /// [`after`](Phase::after) phase, sets `started`, initialises the children concurrently, runs
    /// [`on_init`](Component::on_init), and sets `finished`. Before anything runs, the
    /// dependencies of the whole subtree are checked for cycles. A second call logs a warning and
    /// returns `Ok(())` at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::lifecycle::{Component, ComponentExt, Lifecycle};
    ///
    /// #[derive(Default)]
    /// struct Pool { lifecycle: Lifecycle }
    /// impl Component for Pool {
    ///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
    /// }
    ///
    /// let pool = Pool::default();
    /// pool.init().await.unwrap();
    /// assert!(pool.lifecycle().init_phase().finished().is_set());
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// The first error in the subtree: [`Cycle`](LifecycleError::Cycle),
    /// [`Failed`](LifecycleError::Failed) (a hook erred or panicked),
    /// [`DependencyFailed`](LifecycleError::DependencyFailed) or
    /// [`TimedOut`](LifecycleError::TimedOut).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the hooks in progress; their phases are marked failed, so
    /// nothing waits on them forever.
    fn init(&self) -> impl Future<Output = Result<(), LifecycleError>> + Send + '_
    where
        Self: Sized,
    {
        run::run_top(self, PhaseKind::Init, run::Teardown::All)
    }

    /// De-initialises this component and its subtree, in the reverse order of init.
    ///
    /// Sets `scheduled`, waits for its dependencies, sets `started`, runs
    /// [`on_deinit`](Component::on_deinit), de-initialises the children concurrently, and sets
    /// `finished`. A component whose init was scheduled but did not finish (it failed or was
    /// cancelled) has nothing to undo: its `on_deinit` is skipped, its children are still
    /// visited. A second call logs a warning and returns `Ok(())` at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::lifecycle::{Component, ComponentExt, Lifecycle};
    ///
    /// #[derive(Default)]
    /// struct Pool { lifecycle: Lifecycle }
    /// impl Component for Pool {
    ///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
    /// }
    ///
    /// let pool = Pool::default();
    /// pool.init().await.unwrap();
    /// pool.deinit().await.unwrap();
    /// assert!(pool.lifecycle().deinit_phase().finished().is_set());
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// The first error in the subtree; the rest of the subtree is still de-initialised.
    fn deinit(&self) -> impl Future<Output = Result<(), LifecycleError>> + Send + '_
    where
        Self: Sized,
    {
        run::run_top(self, PhaseKind::Deinit, run::Teardown::All)
    }

    /// Declares that this component needs `other`: it initialises after `other` finished init,
    /// and `other` de-initialises after this one finished deinit.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::{Component, ComponentExt, Lifecycle};
    ///
    /// #[derive(Default)]
    /// struct Db { lifecycle: Lifecycle }
    /// impl Component for Db { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
    /// #[derive(Default)]
    /// struct Api { lifecycle: Lifecycle }
    /// impl Component for Api { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
    ///
    /// let (db, api) = (Db::default(), Api::default());
    /// api.depends_on(&db).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`LifecycleError::AlreadyScheduled`] if this component's init or `other`'s deinit was
    /// already scheduled; then neither edge is added.
    fn depends_on(&self, other: &impl Component) -> Result<(), LifecycleError>
    where
        Self: Sized,
    {
        let (name, other_name) = (self.name(), other.name());
        let (init, other_init) = (
            self.lifecycle().init_phase(),
            other.lifecycle().init_phase(),
        );
        let (deinit, other_deinit) = (
            self.lifecycle().deinit_phase(),
            other.lifecycle().deinit_phase(),
        );
        // Names first, so that a later cycle or failure can name both ends.
        init.record_name(|| self.dyn_name_to_record());
        other_init.record_name(|| other.dyn_name_to_record());
        // Check both before adding either, so that a failed call adds nothing.
        if init.is_scheduled() {
            return Err(LifecycleError::AlreadyScheduled {
                component: name.into_owned(),
                phase: PhaseKind::Init,
            });
        }
        if other_deinit.is_scheduled() {
            return Err(LifecycleError::AlreadyScheduled {
                component: other_name.into_owned(),
                phase: PhaseKind::Deinit,
            });
        }
        init.after(other_init)?;
        other_deinit.after(deinit)
    }
}

impl<C: Component> ComponentExt for C {}

/// A reference or smart pointer to a component is that component: `&C`, `Box<C>` and `Arc<C>`
/// delegate every method, so that shared and boxed children can be listed as they are.
macro_rules! delegate_component {
    ($($pointer:ty),+) => {$(
        impl<C: Component + ?Sized> Component for $pointer {
            fn lifecycle(&self) -> &Lifecycle {
                (**self).lifecycle()
            }
            fn name(&self) -> Cow<'_, str> {
                (**self).name()
            }
            fn on_init(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
                (**self).on_init()
            }
            fn on_deinit(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
                (**self).on_deinit()
            }
            fn children(&self) -> Children<'_> {
                (**self).children()
            }
            fn on_run(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
                (**self).on_run()
            }
        }
    )+};
}

delegate_component!(&C, Box<C>, std::sync::Arc<C>);

/// [`Component`] made object-safe, so that children of different types can sit in one list.
pub(crate) trait DynComponent: Send + Sync {
    fn dyn_lifecycle(&self) -> &Lifecycle;
    fn dyn_name(&self) -> Cow<'_, str>;
    /// The name a phase records: a name that is the end of the type's name (as the default
    /// name is) is kept as that `'static` slice of it, without a copy.
    fn dyn_name_to_record(&self) -> Cow<'static, str>;
    /// The hook of phase `kind`, boxed (a component's default hooks are empty futures, which a
    /// box does not allocate for).
    fn dyn_hook(&self, kind: PhaseKind) -> BoxFuture<'_, Result<(), BoxError>>;
    fn dyn_children(&self) -> Children<'_>;
    /// Whether `on_run` is not the default.
    fn dyn_has_on_run(&self) -> bool;
    /// Whether `on_deinit` is not the default.
    fn dyn_has_deinit_hook(&self) -> bool;
    fn dyn_on_run(&self) -> BoxFuture<'_, Result<(), BoxError>>;
}

impl<C: Component> DynComponent for C {
    fn dyn_lifecycle(&self) -> &Lifecycle {
        self.lifecycle()
    }
    fn dyn_name(&self) -> Cow<'_, str> {
        self.name()
    }
    fn dyn_name_to_record(&self) -> Cow<'static, str> {
        let name = self.name();
        let type_name = std::any::type_name::<Self>();
        match type_name.strip_suffix(&*name) {
            Some(rest) => Cow::Borrowed(&type_name[rest.len()..]),
            None => Cow::Owned(name.into_owned()),
        }
    }
    fn dyn_hook(&self, kind: PhaseKind) -> BoxFuture<'_, Result<(), BoxError>> {
        // Two arms, as the runs use it (a third kept it from being inlined in them).
        match kind {
            PhaseKind::Init => Box::pin(self.on_init()),
            _ => Box::pin(self.on_deinit()),
        }
    }
    fn dyn_children(&self) -> Children<'_> {
        self.children()
    }
    fn dyn_has_on_run(&self) -> bool {
        !returns_default::<Self, _, Idle>(Self::on_run)
    }
    fn dyn_has_deinit_hook(&self) -> bool {
        !returns_default::<Self, _, NoHook>(Self::on_deinit)
    }
    fn dyn_on_run(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(self.on_run())
    }
}

/// `alloc::vec::Vec<my_app::Worker>` → `Vec<Worker>`: each path cut to its last segment.
///
/// A plain path (the common case) is cut without allocating, by reading only its last segment: it
/// is a plain path when that segment holds no generics, tuple or slice, and the name is not a
/// reference, pointer, tuple, slice or trait object (which begin with `&`, `*`, `(`, `[`, `dyn `).
fn short_type_name(full: &'static str) -> Cow<'static, str> {
    let bytes = full.as_bytes();
    let start = bytes
        .iter()
        .rposition(|&byte| byte == b':')
        .map_or(0, |colon| colon + 1);
    let last = &bytes[start..];
    let plain = !last
        .iter()
        .any(|byte| matches!(byte, b'<' | b'>' | b'(' | b')' | b'[' | b']' | b' '))
        && !matches!(bytes.first(), Some(b'&' | b'*' | b'(' | b'['))
        && !full.starts_with("dyn ");
    if plain {
        Cow::Borrowed(&full[start..])
    } else {
        Cow::Owned(cut_paths(full))
    }
}

fn cut_paths(full: &str) -> String {
    let mut short = String::with_capacity(full.len());
    // Where the path being written in `short` began.
    let mut path_start = 0;
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            short.truncate(path_start);
            continue;
        }
        short.push(c);
        // `{{closure}}` and `{{impl}}` are path segments too.
        if !(c.is_alphanumeric() || matches!(c, '_' | '{' | '}')) {
            path_start = short.len();
        }
    }
    short
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::short_type_name;

    #[test]
    fn short_type_names() {
        struct Database;
        assert!(matches!(
            short_type_name(std::any::type_name::<Database>()),
            Cow::Borrowed("Database")
        ));
        assert_eq!(short_type_name("my_app::Database"), "Database");
        assert_eq!(short_type_name("Plain"), "Plain");
        assert_eq!(
            short_type_name("alloc::vec::Vec<my_app::db::Pool<u8>>"),
            "Vec<Pool<u8>>"
        );
        assert_eq!(short_type_name("(a::B, c::D)"), "(B, D)");
        assert_eq!(short_type_name("&app::Thing"), "&Thing");
        assert_eq!(short_type_name("*const app::Thing"), "*const Thing");
        assert_eq!(short_type_name("[app::Thing; 2]"), "[Thing; 2]");
        assert_eq!(short_type_name("dyn app::Thing"), "dyn Thing");
        assert_eq!(short_type_name("app::Wrapper<u8>"), "Wrapper<u8>");
        assert_eq!(short_type_name("app::Pâté"), "Pâté");
        // A type declared inside a function or closure (as in doctests).
        assert_eq!(
            short_type_name("doctest::main::{{closure}}::FileManager"),
            "FileManager"
        );
    }
}
