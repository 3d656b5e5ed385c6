//! `#[reward]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

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
        // The argument carries the span of the user's parameter type, the conversion that of the
        // return type: a wrong one is reported where it is written.
        let span = fn_item::return_span(&f.sig);
        let (call, value) = (syn::Ident::new(&ident.to_string(), span), syn::Ident::new("__eef_value", span));
        let arg = syn::Ident::new("trajectory", fn_item::param_span(&f.sig, 0));
        let score = quote_spanned! {span=>
            let #value = #call::call(#arg);
            ::eef_runtime::__private::IntoScore::into_score(#value)
        };
        quote! {
            impl ::eef_runtime::__private::Reward for #ident {
                fn name(&self) -> &str {
                    #name
                }
                fn score(&self, trajectory: &::eef_runtime::__private::Trajectory) -> f64 {
                    #score
                }
                fn threshold(&self) -> f64 {
                    #success
                }
            }
        }
    })
}
