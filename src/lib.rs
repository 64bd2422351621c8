//! Test harness crate: owns `examples/` and `tests/`, and compiles every Rust block of
//! the README and the book as a doctest, so the guide cannot drift from the code.
//!
//! The cookbook pages include their example with mdBook's `{{#include}}`, which a
//! doctest would see literally: those blocks are fenced `rust,ignore`, and the examples
//! themselves are built by `cargo test` and run by `tests/examples.rs`.
#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]

/// The book's chapters, each compiled and run as doctests.
pub mod book {
    #[doc = include_str!("../book/src/introduction.md")]
    pub mod introduction {}
    #[doc = include_str!("../book/src/quick-start.md")]
    pub mod quick_start {}
    #[doc = include_str!("../book/src/pending.md")]
    pub mod pending {}
    #[doc = include_str!("../book/src/callers.md")]
    pub mod callers {}
    #[doc = include_str!("../book/src/pool.md")]
    pub mod pool {}
    #[doc = include_str!("../book/src/queues.md")]
    pub mod queues {}
    #[doc = include_str!("../book/src/completion.md")]
    pub mod completion {}
    #[doc = include_str!("../book/src/groups.md")]
    pub mod groups {}
    #[doc = include_str!("../book/src/macros.md")]
    pub mod macros {}
    #[doc = include_str!("../book/src/host-loops.md")]
    pub mod host_loops {}
    #[doc = include_str!("../book/src/debugging.md")]
    pub mod debugging {}
    #[doc = include_str!("../book/src/coming-from-tokio.md")]
    pub mod coming_from_tokio {}
    #[doc = include_str!("../book/src/async-kernel.md")]
    pub mod async_kernel {}
    #[doc = include_str!("../book/src/cookbook.md")]
    pub mod cookbook {}
    #[doc = include_str!("../book/src/cookbook-tour.md")]
    pub mod cookbook_tour {}
    #[doc = include_str!("../book/src/cookbook-macros.md")]
    pub mod cookbook_macros {}
    #[doc = include_str!("../book/src/cookbook-host-loop.md")]
    pub mod cookbook_host_loop {}
    #[doc = include_str!("../book/src/cookbook-event-loop.md")]
    pub mod cookbook_event_loop {}
    #[doc = include_str!("../book/src/cookbook-progress.md")]
    pub mod cookbook_progress {}
    #[doc = include_str!("../book/src/cookbook-shutdown.md")]
    pub mod cookbook_shutdown {}
    #[doc = include_str!("../book/src/cookbook-tokio-first.md")]
    pub mod cookbook_tokio_first {}
    #[doc = include_str!("../book/src/cookbook-sqlite.md")]
    pub mod cookbook_sqlite {}
    #[doc = include_str!("../book/src/faq.md")]
    pub mod faq {}
    #[doc = include_str!("../book/src/performance.md")]
    pub mod performance {}
    #[doc = include_str!("../book/src/design-notes.md")]
    pub mod design_notes {}
}
