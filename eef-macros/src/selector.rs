//! `#[selector]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Type};

use crate::args::push;
use crate::fn_item;

const SHAPE: &str = "fn name(group: &TaskGroup<'_>) -> Selection` or, with parameters from the method's `params` table, `fn name(group: &TaskGroup<'_>, params: &Params) -> Selection";

/// The type behind the second argument's reference (`&Params` → `Params`), or an error spanned
/// on the argument that says how to write it.
fn params_type(arg: &FnArg) -> Result<&Type, syn::Error> {
    let FnArg::Typed(pat) = arg else {
        return Err(syn::Error::new_spanned(arg, "the parameters argument is a typed argument: `params: &YourParams`"));
    };
    match &*pat.ty {
        Type::Reference(r) if r.mutability.is_none() => Ok(&r.elem),
        other => Err(syn::Error::new_spanned(
            other,
            "#[selector] parameters are taken by shared reference: write `params: &YourParams` (a `Deserialize + Default` struct read from the method's `params` table)",
        )),
    }
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    fn_item::expand(args, item, "selector", SHAPE, 2, &["name", "plan"], |f, a, errors| {
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
        let (ident, vis) = (&f.sig.ident, &f.vis);
        let params = match f.sig.inputs.iter().nth(1).map(params_type) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                push(errors, e);
                return TokenStream::new();
            }
        };
        // With parameters, the unit struct runs with `P::default()` and each method gets a copy
        // bound to its own `params` table. The trait requirements are spanned on the user's
        // parameter type, so a missing `Deserialize` or `Default` is reported there.
        let default_params = params.map(|t| quote_spanned! {t.span()=> , &<#t as ::eef_runtime::__private::Default>::default() });
        let plan_fn = plan.as_ref().map(|p| {
            // Bound to a typed name spanned on the path given as `plan = ...`, so a plan function
            // with the wrong return type is reported on that path, not on the attribute.
            let value = syn::Ident::new("__eef_plan", p.span());
            let body = quote_spanned! {p.span()=>
                let #value: ::eef_runtime::__private::Vec<::eef_runtime::__private::StartState> = #p(ctx #default_params);
                #value
            };
            quote! {
                fn plan(
                    &self,
                    ctx: &::eef_runtime::__private::PlanContext<'_>,
                ) -> ::eef_runtime::__private::Vec<::eef_runtime::__private::StartState> {
                    #body
                }
            }
        });
        let (configure, with) = match params {
            None => (None, None),
            Some(t) => {
                let parse = quote_spanned! {t.span()=> params.parse::<#t>() };
                let plan_value = match &plan {
                    Some(p) => quote! {
                        ::eef_runtime::__private::Option::Some(|ctx: &::eef_runtime::__private::PlanContext<'_>, params: &#t| #p(ctx, params))
                    },
                    None => quote! { ::eef_runtime::__private::Option::None },
                };
                let configure = quote! {
                    fn configure(
                        &self,
                        params: &::eef_runtime::__private::Params<'_>,
                    ) -> ::eef_runtime::__private::Result<
                        ::eef_runtime::__private::Option<::eef_runtime::__private::Arc<dyn ::eef_runtime::__private::Selector>>,
                        ::eef_runtime::__private::ConfigError,
                    > {
                        let params = #parse?;
                        ::eef_runtime::__private::Result::Ok(::eef_runtime::__private::configured(#ident::with(params)))
                    }
                };
                let with = quote! {
                    impl #ident {
                        /// This selector bound to `params` (what a method's `params` table gives it).
                        #[allow(dead_code)]
                        #vis fn with(params: #t) -> ::eef_runtime::__private::Configured<#t> {
                            ::eef_runtime::__private::Configured::new(#name, params, |group, params| #ident::call(group, params), #plan_value)
                        }
                    }
                };
                (Some(configure), Some(with))
            }
        };
        // The call is spanned on the user's return type, so a wrong one is reported there.
        let span = fn_item::return_span(&f.sig);
        let (call, value) = (syn::Ident::new(&ident.to_string(), span), syn::Ident::new("__eef_value", span));
        let group = syn::Ident::new("group", fn_item::param_span(&f.sig, 0));
        let select_body = quote_spanned! {span=>
            let #value: ::eef_runtime::__private::Selection = #call::call(#group #default_params);
            #value
        };
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
                    #select_body
                }
                #configure
            }
            #with
        }
    })
}
