use eef_runtime::prelude::*;

#[selector]
struct Longest;

fn main() {}
