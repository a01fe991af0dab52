//! `CancellationToken`: tokio-util's, on any runtime.
//!
//! The tokens form a tree of nodes. A node holds its parent and its children; a child is in its
//! parent's `children` at `index` exactly when its `parent` is that parent, and both sides change
//! only under both nodes' locks, taken parent first. Cancelling a node takes its children out of
//! the tree and cancels them, iteratively (a chain of any depth costs no stack). When a token's
//! last clone is dropped its node leaves the tree and its children move up to its parent, so a
//! parent that lives for ever while children come and go keeps only the live ones.

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use crate::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex, lock};

/// A token that tells tasks to stop: tokio-util's `CancellationToken`, on any runtime.
///
/// [`cancel`](CancellationToken::cancel) cancels the token, its clones (they are one token) and
/// every token made from it with [`child_token`](CancellationToken::child_token), at any depth;
/// cancelling a child never cancels its parent. Tasks wait with
/// [`cancelled`](CancellationToken::cancelled), or run a future until the token is cancelled with
/// [`run_until_cancelled`](CancellationToken::run_until_cancelled).
///
/// Tokens compare and hash by identity, as tokio-util's: clones are equal, a child is not its
/// parent.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::CancellationToken;
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let shutdown = CancellationToken::new();
/// let worker = rt.spawn({
///     let token = shutdown.child_token();
///     async move {
///         token.cancelled().await;
///         "stopped"
///     }
/// });
/// shutdown.cancel();
/// assert_eq!(worker.await.unwrap(), "stopped");
/// # });
/// ```
pub struct CancellationToken {
    node: Arc<Node>,
}

struct Node {
    /// `CANCELLED`, set under the node's lock.
    state: AtomicU8,
    /// The token's clones. At zero the node leaves the tree.
    handles: AtomicUsize,
    links: Mutex<Links>,
}

#[derive(Default)]
struct Links {
    parent: Option<Arc<Node>>,
    /// This node's place in its parent's `children`.
    index: usize,
    children: Vec<Arc<Node>>,
    /// The tasks waiting for the cancel. (A slot per waiter in one list, rather than a listener
    /// allocated per waiter: the "cancel with 1k waiters" row.)
    waiters: Waiters,
}

const CANCELLED: u8 = 0b01;

/// The wakers of the waits on a node, in slots that a dropped wait frees for the next one.
struct Waiters {
    slots: Vec<Slot>,
    /// The first free slot, or `NONE`.
    free: usize,
}

enum Slot {
    Waiting(Waker),
    Free { next: usize },
}

const NONE: usize = usize::MAX;

impl Default for Waiters {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: NONE,
        }
    }
}

impl Waiters {
    /// Registers `waker`; gives its slot.
    fn insert(&mut self, waker: &Waker) -> usize {
        let waiting = Slot::Waiting(waker.clone());
        match self.slots.get_mut(self.free) {
            Some(slot) => {
                let key = self.free;
                let Slot::Free { next } = std::mem::replace(slot, waiting) else {
                    unreachable!("the free list holds free slots");
                };
                self.free = next;
                key
            }
            None => {
                self.slots.push(waiting);
                self.slots.len() - 1
            }
        }
    }

    fn update(&mut self, key: usize, waker: &Waker) {
        if let Some(Slot::Waiting(registered)) = self.slots.get_mut(key) {
            registered.clone_from(waker);
        }
    }

    /// Frees slot `key`; nothing if the wakers were taken by a cancel.
    fn remove(&mut self, key: usize) {
        if let Some(slot @ Slot::Waiting(_)) = self.slots.get_mut(key) {
            *slot = Slot::Free { next: self.free };
            self.free = key;
        }
    }

    fn wake_all(self) {
        for slot in self.slots {
            if let Slot::Waiting(waker) = slot {
                waker.wake();
            }
        }
    }
}

impl Node {
    fn new(parent: Option<Arc<Node>>, index: usize, state: u8) -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU8::new(state),
            handles: AtomicUsize::new(1),
            links: Mutex::new(Links {
                parent,
                index,
                children: Vec::new(),
                waiters: Waiters::default(),
            }),
        })
    }

    fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) & CANCELLED != 0
    }

    /// Waits until the node is cancelled; `key` is the wait's slot once it has one. The mark
    /// is set and the wakers taken under the node's lock, so a wait that registers under it
    /// before the mark is woken, and one that comes after sees the mark.
    fn poll_cancelled(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_cancelled() {
            *key = None;
            return Poll::Ready(());
        }
        let mut links = lock(&self.links);
        if self.is_cancelled() {
            *key = None;
            return Poll::Ready(());
        }
        match *key {
            Some(registered) => links.waiters.update(registered, cx.waker()),
            None => *key = Some(links.waiters.insert(cx.waker())),
        }
        Poll::Pending
    }

    /// A wait with slot `key` is dropped.
    fn forget(&self, key: Option<usize>) {
        if let Some(key) = key {
            lock(&self.links).waiters.remove(key);
        }
    }
}

/// Cancels `root` and everything below it. No lock is held while waiters are woken, so a waker
/// may use any token.
///
/// A node is marked cancelled as it is cut off from its parent (under both locks), and its own
/// children are cut off when it is taken from the stack: a node that is marked but not yet
/// taken keeps its children, and whoever marked it cuts them off. Until then, a token dropped
/// below it moves its children up to it, and one dropped at it leaves them there.
fn cancel_tree(root: &Arc<Node>) {
    let before = {
        let _links = lock(&root.links);
        root.state.fetch_or(CANCELLED, Ordering::AcqRel)
    };
    if before & CANCELLED != 0 {
        // Cancelled already, or marked by an ancestor's cancel that cuts its children off.
        return;
    }
    let mut stack = Vec::new();
    let mut next = Some(root.clone());
    while let Some(node) = next.take().or_else(|| stack.pop()) {
        let waiters = {
            let mut links = lock(&node.links);
            for child in links.children.drain(..) {
                let mut child_links = lock(&child.links);
                child_links.parent = None;
                let child_before = child.state.fetch_or(CANCELLED, Ordering::AcqRel);
                drop(child_links);
                // A child cancelled on its own cuts off its children itself (or has).
                if child_before & CANCELLED == 0 {
                    stack.push(child);
                }
            }
            std::mem::take(&mut links.waiters)
        };
        waiters.wake_all();
    }
}

/// Takes `node`, whose last token was dropped, out of the tree: its children move to its parent
/// (or become roots).
fn leave_tree(node: &Arc<Node>) {
    loop {
        let parent = lock(&node.links).parent.clone();
        let Some(parent) = parent else {
            // A root: its children become roots. (Nobody makes a node without a parent a child,
            // so `parent` stays `None`.) A node cut off by a cancel is marked cancelled, and
            // its children are the canceller's to cut off.
            let mut links = lock(&node.links);
            if node.is_cancelled() {
                return;
            }
            for child in links.children.drain(..) {
                lock(&child.links).parent = None;
            }
            return;
        };
        let mut up = lock(&parent.links);
        let mut links = lock(&node.links);
        if !links
            .parent
            .as_ref()
            .is_some_and(|now| Arc::ptr_eq(now, &parent))
        {
            // Moved up, or cut off, while we took the locks: look again.
            continue;
        }
        let index = links.index;
        debug_assert!(Arc::ptr_eq(&up.children[index], node));
        up.children.swap_remove(index);
        if let Some(moved) = up.children.get(index) {
            lock(&moved.links).index = index;
        }
        links.parent = None;
        for child in links.children.drain(..) {
            let mut child_links = lock(&child.links);
            child_links.parent = Some(parent.clone());
            child_links.index = up.children.len();
            drop(child_links);
            up.children.push(child);
        }
        return;
    }
}

impl CancellationToken {
    /// A token that is not cancelled, with no parent.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = asynchronously::CancellationToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self {
            node: Node::new(None, 0, 0),
        }
    }

    /// A token that is cancelled when this one is, and can be cancelled on its own without
    /// cancelling this one. A child of a cancelled token is cancelled from the start.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::CancellationToken;
    ///
    /// let parent = CancellationToken::new();
    /// let child = parent.child_token();
    /// child.cancel();
    /// assert!(!parent.is_cancelled()); // never upwards
    /// let other = parent.child_token();
    /// parent.cancel();
    /// assert!(other.is_cancelled());
    /// assert!(parent.child_token().is_cancelled());
    /// ```
    pub fn child_token(&self) -> CancellationToken {
        let mut links = lock(&self.node.links);
        // Checked under the lock that a cancel takes the children under.
        if self.node.is_cancelled() {
            return Self {
                node: Node::new(None, 0, CANCELLED),
            };
        }
        let child = Node::new(Some(self.node.clone()), links.children.len(), 0);
        links.children.push(child.clone());
        Self { node: child }
    }

    /// Cancels this token and every token below it, and wakes every task waiting on any of
    /// them. Cancelling again does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = asynchronously::CancellationToken::new();
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        cancel_tree(&self.node);
    }

    /// Whether the token is cancelled (by itself, or by an ancestor).
    ///
    /// # Examples
    ///
    /// ```
    /// let token = asynchronously::CancellationToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    /// A future that completes once the token is cancelled (at once if it is).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let token = asynchronously::CancellationToken::new();
    /// token.cancel();
    /// token.cancelled().await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future only stops waiting.
    pub fn cancelled(&self) -> WaitForCancellation<'_> {
        WaitForCancellation {
            token: self,
            key: None,
        }
    }

    /// [`cancelled`](CancellationToken::cancelled), owning the token: `'static`, so that it can be
    /// stored or spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::CancellationToken;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let token = CancellationToken::new();
    /// let waiter = rt.spawn(token.clone().cancelled_owned());
    /// token.cancel();
    /// futures::executor::block_on(waiter).unwrap();
    /// ```
    pub fn cancelled_owned(self) -> WaitForCancellationOwned {
        WaitForCancellationOwned {
            token: self,
            key: None,
        }
    }

    /// A guard that cancels the token when it is dropped, unless
    /// [`disarm`](DropGuard::disarm)ed.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::CancellationToken;
    ///
    /// let token = CancellationToken::new();
    /// {
    ///     let _guard = token.clone().drop_guard();
    /// } // the scope ends, by return, `?` or panic: cancelled
    /// assert!(token.is_cancelled());
    /// ```
    pub fn drop_guard(self) -> DropGuard {
        DropGuard { token: Some(self) }
    }

    /// Runs `future` until it completes (`Some` of its output) or the token is cancelled
    /// (`None`; the future is dropped). On a cancelled token the future is never polled; after
    /// that, a future that completes on the poll that sees the cancel still gives its output,
    /// as tokio-util's does.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::CancellationToken;
    ///
    /// let token = CancellationToken::new();
    /// assert_eq!(token.run_until_cancelled(async { 1 }).await, Some(1));
    /// token.cancel();
    /// assert_eq!(token.run_until_cancelled(std::future::pending::<()>()).await, None);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As cancel safe as `future`.
    pub fn run_until_cancelled<F: Future>(&self, future: F) -> RunUntilCancelled<'_, F> {
        RunUntilCancelled {
            cancelled: self.cancelled(),
            future,
            first: true,
        }
    }
}

impl Default for CancellationToken {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for CancellationToken {
    fn clone(&self) -> Self {
        // A clone is made from a live token, so the count is at least one: nothing to order.
        self.node.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            node: self.node.clone(),
        }
    }
}

impl Drop for CancellationToken {
    fn drop(&mut self) {
        if self.node.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            leave_tree(&self.node);
        }
    }
}

impl PartialEq for CancellationToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

impl Eq for CancellationToken {}

impl Hash for CancellationToken {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(&*self.node, state);
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("is_cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The future of [`CancellationToken::cancelled`].
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{CancellationToken, WaitForCancellation};
///
/// let token = CancellationToken::new();
/// let wait: WaitForCancellation<'_> = token.cancelled();
/// token.cancel();
/// wait.await;
/// # });
/// ```
#[must_use = "a WaitForCancellation does nothing unless awaited"]
pub struct WaitForCancellation<'a> {
    token: &'a CancellationToken,
    /// The wait's slot among the token's waiters, once it has one.
    key: Option<usize>,
}

impl Future for WaitForCancellation<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.token.node.poll_cancelled(&mut this.key, cx)
    }
}

impl Drop for WaitForCancellation<'_> {
    fn drop(&mut self) {
        self.token.node.forget(self.key);
    }
}

impl fmt::Debug for WaitForCancellation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellation")
            .field("token", self.token)
            .finish()
    }
}

/// The future of [`CancellationToken::cancelled_owned`]: owns its token.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{CancellationToken, WaitForCancellationOwned};
///
/// let token = CancellationToken::new();
/// let wait: WaitForCancellationOwned = token.clone().cancelled_owned();
/// token.cancel();
/// wait.await;
/// # });
/// ```
#[must_use = "a WaitForCancellationOwned does nothing unless awaited"]
pub struct WaitForCancellationOwned {
    token: CancellationToken,
    /// The wait's slot among the token's waiters, once it has one.
    key: Option<usize>,
}

impl Future for WaitForCancellationOwned {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.token.node.poll_cancelled(&mut this.key, cx)
    }
}

impl Drop for WaitForCancellationOwned {
    fn drop(&mut self) {
        self.token.node.forget(self.key);
    }
}

impl fmt::Debug for WaitForCancellationOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellationOwned")
            .field("token", &self.token)
            .finish()
    }
}

/// Cancels its token when dropped, unless [`disarm`](DropGuard::disarm)ed: from
/// [`CancellationToken::drop_guard`]. A drop during a panic's unwind cancels too, and never
/// panics itself.
///
/// # Examples
///
/// ```
/// use asynchronously::CancellationToken;
///
/// let token = CancellationToken::new();
/// let guard = token.clone().drop_guard();
/// let token_again = guard.disarm(); // the work went well: keep the token alive
/// drop(token_again);
/// assert!(!token.is_cancelled());
/// ```
#[must_use = "a DropGuard cancels its token as soon as it is dropped"]
pub struct DropGuard {
    /// `None` once disarmed.
    token: Option<CancellationToken>,
}

impl DropGuard {
    /// Gives the token back without cancelling it.
    ///
    /// # Examples
    ///
    /// ```
    /// let guard = asynchronously::CancellationToken::new().drop_guard();
    /// assert!(!guard.disarm().is_cancelled());
    /// ```
    pub fn disarm(mut self) -> CancellationToken {
        self.token
            .take()
            .expect("a DropGuard holds its token until disarmed")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(token) = &self.token {
            token.cancel();
        }
    }
}

impl fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropGuard")
            .field("token", &self.token)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`CancellationToken::run_until_cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::{CancellationToken, RunUntilCancelled};
    ///
    /// let token = CancellationToken::new();
    /// let run: RunUntilCancelled<'_, _> = token.run_until_cancelled(async { "done" });
    /// assert_eq!(run.await, Some("done"));
    /// # });
    /// ```
    #[must_use = "a RunUntilCancelled does nothing unless awaited"]
    pub struct RunUntilCancelled<'a, F> {
        cancelled: WaitForCancellation<'a>,
        #[pin]
        future: F,
        first: bool,
    }
}

impl<F: Future> Future for RunUntilCancelled<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if std::mem::take(this.first) && this.cancelled.token.is_cancelled() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        ready!(Pin::new(this.cancelled).poll(cx));
        Poll::Ready(None)
    }
}

impl<F> fmt::Debug for RunUntilCancelled<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntilCancelled")
            .field("token", self.cancelled.token)
            .finish_non_exhaustive()
    }
}
