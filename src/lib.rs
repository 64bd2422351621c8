//! Test harness crate: owns `examples/` and `tests/`, and compiles every Rust block of
//! the README and the book as a doctest, so the guide cannot drift from the code.
#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]

/// The book's chapters, each compiled and run as doctests.
pub mod book {
    #[doc = include_str!("../book/src/introduction.md")]
    pub mod introduction {}
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
    #[doc = include_str!("../book/src/seed-mapping.md")]
    pub mod seed_mapping {}
    #[doc = include_str!("../book/src/design-notes.md")]
    pub mod design_notes {}
    #[doc = include_str!("../book/src/performance.md")]
    pub mod performance {}
}
