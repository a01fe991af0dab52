//! `Children`, `ChildSource`, and the `children!` macro.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use super::{Component, DynComponent};

/// The children a component owns: initialised concurrently before its own `on_init`, and
/// deinitialised concurrently after its own `on_deinit`.
///
/// Python finds them by walking `vars(self)`; Rust names them, with the
/// [`children!`](crate::children) macro. Each expression is a component or anything that holds
/// components (see [`ChildSource`]): an `Option`, `Box`, `Arc` or `&` of one, a `Vec`, slice or
/// array, the values of a `HashMap` / `BTreeMap`, the members of a `HashSet` / `BTreeSet`, and
/// any nesting of these.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use asynchronously::children;
/// use asynchronously::lifecycle::{Children, Component, Lifecycle};
///
/// #[derive(Default)]
/// struct Worker { lifecycle: Lifecycle }
/// impl Component for Worker {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
/// }
///
/// #[derive(Default)]
/// struct App {
///     lifecycle: Lifecycle,
///     main: Worker,
///     cache: Option<Arc<Worker>>,
///     pool: Vec<Worker>,
///     by_region: HashMap<String, Worker>,
/// }
///
/// impl Component for App {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
///     fn children(&self) -> Children<'_> {
///         children![self.main, self.cache, self.pool, self.by_region]
///     }
/// }
///
/// let app = App { pool: vec![Worker::default(), Worker::default()], ..App::default() };
/// assert_eq!(app.children().len(), 3); // main and the two in the pool
/// ```
#[derive(Default)]
pub struct Children<'a> {
    items: Vec<&'a dyn DynComponent>,
}

impl<'a> Children<'a> {
    /// No children: the default of [`Component::children`].
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::Children;
    ///
    /// assert!(Children::none().is_empty());
    /// ```
    pub fn none() -> Self {
        Self { items: Vec::new() }
    }

    /// An empty list to [`add`](Children::add) to; what [`children!`](crate::children) builds on.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::Children;
    ///
    /// let children = Children::new();
    /// assert_eq!(children.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::none()
    }

    /// Adds every component `source` holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::{Children, Component, Lifecycle};
    ///
    /// #[derive(Default)]
    /// struct Worker { lifecycle: Lifecycle }
    /// impl Component for Worker {
    ///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
    /// }
    ///
    /// let workers: Vec<Option<Worker>> = vec![Some(Worker::default()), None];
    /// let mut children = Children::new();
    /// children.add(&workers);
    /// assert_eq!(children.len(), 1);
    /// ```
    pub fn add<S: ChildSource + ?Sized>(&mut self, source: &'a S) -> &mut Self {
        source.add_to(self);
        self
    }

    /// How many children there are.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(asynchronously::lifecycle::Children::none().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(asynchronously::lifecycle::Children::none().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn push<C: Component>(&mut self, component: &'a C) {
        self.items.push(component);
    }

    pub(crate) fn into_items(self) -> Vec<&'a dyn DynComponent> {
        self.items
    }
}

impl fmt::Debug for Children<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.items.iter().map(|c| c.dyn_name()))
            .finish()
    }
}

/// Anything that holds components, so that it can be listed in [`children!`](crate::children).
///
/// Implemented for every [`Component`] (including `Box`, `Arc` and `&` of one), and for `Option`,
/// `Vec`, slices, arrays, `HashMap` / `BTreeMap` (their values) and `HashSet` / `BTreeSet` of
/// anything that implements it. Implement it for a collection of your own by adding each
/// component it holds.
///
/// # Examples
///
/// ```
/// use asynchronously::lifecycle::{ChildSource, Children, Component, Lifecycle};
///
/// #[derive(Default)]
/// struct Shard { lifecycle: Lifecycle }
/// impl Component for Shard {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
/// }
///
/// /// A ring of shards, of which only the live ones are children.
/// struct Ring { shards: Vec<(bool, Shard)> }
///
/// impl ChildSource for Ring {
///     fn add_to<'a>(&'a self, children: &mut Children<'a>) {
///         for (live, shard) in &self.shards {
///             if *live {
///                 children.add(shard);
///             }
///         }
///     }
/// }
///
/// let ring = Ring { shards: vec![(true, Shard::default()), (false, Shard::default())] };
/// assert_eq!(Children::new().add(&ring).len(), 1);
/// ```
pub trait ChildSource {
    /// Adds every component this holds to `children`.
    fn add_to<'a>(&'a self, children: &mut Children<'a>);
}

impl<C: Component> ChildSource for C {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        children.push(self);
    }
}

impl<T: ChildSource> ChildSource for Option<T> {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        if let Some(item) = self {
            item.add_to(children);
        }
    }
}

impl<T: ChildSource> ChildSource for [T] {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        // Room for one each (a slice of components, the common case), in one allocation.
        children.items.reserve(self.len());
        self.iter().for_each(|item| item.add_to(children));
    }
}

impl<T: ChildSource, const N: usize> ChildSource for [T; N] {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        self.as_slice().add_to(children);
    }
}

impl<T: ChildSource> ChildSource for Vec<T> {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        self.as_slice().add_to(children);
    }
}

impl<K, T: ChildSource, S> ChildSource for HashMap<K, T, S> {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        self.values().for_each(|item| item.add_to(children));
    }
}

impl<K, T: ChildSource> ChildSource for BTreeMap<K, T> {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        self.values().for_each(|item| item.add_to(children));
    }
}

impl<T: ChildSource, S> ChildSource for HashSet<T, S> {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        self.iter().for_each(|item| item.add_to(children));
    }
}

impl<T: ChildSource> ChildSource for BTreeSet<T> {
    fn add_to<'a>(&'a self, children: &mut Children<'a>) {
        self.iter().for_each(|item| item.add_to(children));
    }
}

/// Lists a component's children, for [`Component::children`](crate::lifecycle::Component::children).
///
/// Each expression is a place (a field, usually) holding a component or a collection of them
/// (see [`ChildSource`]); it is borrowed, not moved.
///
/// # Examples
///
/// ```
/// use asynchronously::children;
/// use asynchronously::lifecycle::{Children, Component, Lifecycle};
///
/// #[derive(Default)]
/// struct Leaf { lifecycle: Lifecycle }
/// impl Component for Leaf {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
/// }
///
/// #[derive(Default)]
/// struct Tree { lifecycle: Lifecycle, left: Leaf, right: Option<Leaf>, more: [Leaf; 2] }
/// impl Component for Tree {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
///     fn children(&self) -> Children<'_> {
///         children![self.left, self.right, self.more]
///     }
/// }
///
/// assert_eq!(Tree::default().children().len(), 3);
/// ```
#[macro_export]
macro_rules! children {
    () => {
        $crate::lifecycle::Children::none()
    };
    ($($child:expr),+ $(,)?) => {{
        let mut children = $crate::lifecycle::Children::new();
        $( children.add(&$child); )+
        children
    }};
}
