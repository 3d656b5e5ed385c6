//! Compile-fail tests of the macros: every misuse gives a spanned error that says how to fix it.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p eef-tests --test ui`
//! and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
