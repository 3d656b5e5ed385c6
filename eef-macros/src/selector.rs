//! `#[selector]`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::push;
use crate::fn_item;

const SHAPE: &str = "fn name(group: &TaskGroup<'_>) -> Selection";

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    fn_item::expand(args, item, "selector", SHAPE, &["name", "plan"], |f, a, errors| {
        let mut name = f.sig.ident.to_string();
        match a.string("name") {
            Ok(Some((n, span))) if n.trim().is_empty() => {
                push(errors, syn::Error::new(span, "`name` must not be empty: it is how `[[methods]]` refers to the selector"))
            }
            Ok(Some((n, _))) => name = n,
            Ok(None) => {}
            Err(e) => push(errors, e),
        }
        let plan = match a.path("plan") {
            Ok(p) => p,
            Err(e) => {
                push(errors, e);
                None
            }
        };
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
        let ident = &f.sig.ident;
        quote! {
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
    })
}
