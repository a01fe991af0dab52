//! One macro that gates an item behind a feature and says so in the docs.

/// Stamps `#[cfg(feature = $feature)]` and `#[cfg_attr(docsrs, doc(cfg(feature = $feature)))]` on
/// every item, so that the rendered docs always name the feature an item needs.
macro_rules! cfg_feature {
    ($feature:literal, $($item:item)*) => {
        $(
            #[cfg(feature = $feature)]
            #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
            $item
        )*
    };
}
