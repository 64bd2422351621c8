//! The macros' compile errors and the programs they must accept, with trybuild:
//! `tests/ui/*.rs` must fail to compile with exactly their reviewed `.stderr`;
//! `tests/ui/pass/*.rs` must compile and run to a zero exit.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`, then read
//! every diff: each error must point at the offending token and say how to fix it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
