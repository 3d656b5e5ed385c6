//! Compile-fail tests of the macros: every misuse gives a spanned error that says how to fix it.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p eef-tests --test ui`
//! and review the diff.

#[test]
fn ui() {
    // trybuild builds every dependency again in its own project under target/tests/trybuild,
    // whose manifest has none of the workspace's [profile] settings. Full debug info there made
    // that second copy of burn, tokenizers and wgpu several GB and filled the CI disk; the errors
    // under test need none. (The variable reaches trybuild's cargo, this process's child.)
    std::env::set_var("CARGO_PROFILE_DEV_DEBUG", "false");
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
