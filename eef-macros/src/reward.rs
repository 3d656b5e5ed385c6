//! `#[reward]`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::push;
use crate::fn_item;

const SHAPE: &str = "fn name(trajectory: &Trajectory) -> f64";

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    fn_item::expand(args, item, "reward", SHAPE, 1, &["name", "success"], |f, a, errors| {
        let mut name = f.sig.ident.to_string();
        let mut success = 1.0f64;
        match a.string("name") {
            Ok(Some((n, _))) => name = n,
            Ok(None) => {}
            Err(e) => push(errors, e),
        }
        match a.number("success") {
            Ok(Some(x)) if x.is_finite() => success = x,
            Ok(Some(_)) => push(errors, syn::Error::new_spanned(a.get("success"), "`success` must be a finite number")),
            Ok(None) => {}
            Err(e) => push(errors, e),
        }
        let ident = &f.sig.ident;
        quote! {
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
    })
}
