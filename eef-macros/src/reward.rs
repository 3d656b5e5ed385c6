//! `#[reward]`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::{push, Args};
use crate::fn_item::{parse_fn, unit_struct, with_errors};

const SHAPE: &str = "fn name(trajectory: &Trajectory) -> f64";

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let f = match parse_fn(item, "reward", SHAPE) {
        Ok(f) => f,
        Err((e, item)) => return with_errors(e, item),
    };
    let parsed = Args::parse(args, "reward", &["name", "success"]);
    let mut errors = None;
    let (mut name, mut success) = (f.sig.ident.to_string(), 1.0f64);
    match parsed {
        Ok(a) => {
            match a.string("name") {
                Ok(Some((n, _))) => name = n,
                Ok(None) => {}
                Err(e) => push(&mut errors, e),
            }
            match a.number("success") {
                Ok(Some(x)) if x.is_finite() => success = x,
                Ok(Some(_)) => push(&mut errors, syn::Error::new_spanned(a.get("success"), "`success` must be a finite number")),
                Ok(None) => {}
                Err(e) => push(&mut errors, e),
            }
        }
        Err(e) => push(&mut errors, e),
    }
    let body = unit_struct(&f);
    if let Some(e) = errors {
        return with_errors(e, body);
    }
    let ident = &f.sig.ident;
    quote! {
        #body

        impl ::eef_runtime::__private::Reward for #ident {
            fn name(&self) -> &str {
                #name
            }
            fn score(&self, trajectory: &::eef_runtime::__private::Trajectory) -> f64 {
                ::core::convert::Into::<f64>::into(#ident::call(trajectory))
            }
            fn threshold(&self) -> f64 {
                #success
            }
        }
    }
}
