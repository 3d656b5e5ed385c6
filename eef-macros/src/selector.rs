//! `#[selector]`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::{push, Args};
use crate::fn_item::{parse_fn, unit_struct, with_errors};

const SHAPE: &str = "fn name(group: &TaskGroup<'_>) -> Selection";

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let f = match parse_fn(item, "selector", SHAPE) {
        Ok(f) => f,
        Err((e, item)) => return with_errors(e, item),
    };
    let mut errors = None;
    let mut name = f.sig.ident.to_string();
    let mut plan = None;
    match Args::parse(args, "selector", &["name", "plan"]) {
        Ok(a) => {
            match a.string("name") {
                Ok(Some((n, span))) if n.trim().is_empty() => {
                    push(&mut errors, syn::Error::new(span, "`name` must not be empty: it is how `[[methods]]` refers to the selector"))
                }
                Ok(Some((n, _))) => name = n,
                Ok(None) => {}
                Err(e) => push(&mut errors, e),
            }
            match a.path("plan") {
                Ok(p) => plan = p,
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
    let plan_fn = plan.map(|p| {
        quote! {
            fn plan(
                &self,
                ctx: &::eef_runtime::__private::PlanContext<'_>,
            ) -> ::eef_runtime::__private::Vec<::eef_runtime::__private::StartState> {
                #p(ctx)
            }
        }
    });
    quote! {
        #body

        impl ::eef_runtime::__private::Selector for #ident {
            fn name(&self) -> &str {
                #name
            }
            #plan_fn
            fn select(
                &self,
                group: &::eef_runtime::__private::TaskGroup<'_>,
            ) -> ::eef_runtime::__private::Selection {
                #ident::call(group)
            }
        }
    }
}
