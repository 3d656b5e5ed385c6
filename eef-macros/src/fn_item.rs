//! Shared handling of `#[reward]` and `#[selector]`: a one-argument function turned into a unit
//! struct of the same name implementing a runtime trait.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn, ReturnType};

use crate::args::{push, Args};

/// Parses `item` as a function and checks that it fits `fn(arg: &T) -> R` (or, when
/// `max_inputs` is 2, `fn(arg: &T, params: &P) -> R`): not async, no generics, one typed
/// argument (up to `max_inputs`), a return type. `shape` is the expected signature for messages.
pub fn parse_fn(item: TokenStream, macro_name: &str, shape: &str, max_inputs: usize) -> Result<ItemFn, (syn::Error, TokenStream)> {
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new_spanned(
                first_tokens(&item),
                format!("#[{macro_name}] goes on a function `{shape}`; implement the trait by hand for a struct"),
            );
            return Err((e, item));
        }
    };
    let mut errors = None;
    if let Some(a) = &f.sig.asyncness {
        push(&mut errors, syn::Error::new_spanned(a, format!("#[{macro_name}] functions must not be async: remove `async` (expected `{shape}`)")));
    }
    if !f.sig.generics.params.is_empty() {
        push(
            &mut errors,
            syn::Error::new_spanned(&f.sig.generics, format!("#[{macro_name}] functions cannot be generic: remove the generic parameters (expected `{shape}`)")),
        );
    }
    let n = f.sig.inputs.len();
    if n == 0 || n > max_inputs {
        let count = if max_inputs == 1 { "exactly one argument" } else { "one or two arguments" };
        let msg = format!("#[{macro_name}] functions take {count}, found {n}: expected `{shape}`");
        let e = if n == 0 {
            syn::Error::new(f.sig.paren_token.span.join(), msg)
        } else {
            syn::Error::new_spanned(&f.sig.inputs, msg)
        };
        push(&mut errors, e);
    } else if let Some(r) = f.sig.inputs.iter().find_map(|a| match a {
        FnArg::Receiver(r) => Some(r),
        FnArg::Typed(_) => None,
    }) {
        push(&mut errors, syn::Error::new_spanned(r, format!("#[{macro_name}] goes on a free function, not a method: expected `{shape}`")));
    }
    if let ReturnType::Default = f.sig.output {
        push(&mut errors, syn::Error::new_spanned(&f.sig, format!("#[{macro_name}] functions must return a value: expected `{shape}`")));
    }
    match errors {
        Some(e) => Err((e, item)),
        None => Ok(f),
    }
}

/// The span of a signature's return type (its first token on stable Rust), or of its name when
/// it has none: where a wrong return type is reported.
pub fn return_span(sig: &syn::Signature) -> proc_macro2::Span {
    use syn::spanned::Spanned;
    match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    }
}

/// The span of a signature's `k`-th typed parameter's type (`self` not counted; the call site
/// when there is none): where an argument of the wrong type is reported.
pub fn param_span(sig: &syn::Signature, k: usize) -> proc_macro2::Span {
    use syn::spanned::Spanned;
    sig.inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t.ty.span()),
            FnArg::Receiver(_) => None,
        })
        .nth(k)
        .unwrap_or_else(proc_macro2::Span::call_site)
}

/// Tokens to point an error at: the item's first two tokens (`struct Name`, `pub fn`).
fn first_tokens(item: &TokenStream) -> TokenStream {
    item.clone().into_iter().take(2).collect()
}

/// The unit struct and its inherent `call` function that keeps the user's signature and body.
pub fn unit_struct(f: &ItemFn) -> TokenStream {
    let ItemFn { attrs, vis, sig, block } = f;
    let name = &sig.ident;
    let inputs = &sig.inputs;
    let output = &sig.output;
    let docs: Vec<_> = attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let others: Vec<_> = attrs.iter().filter(|a| !a.path().is_ident("doc")).collect();
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;

        impl #name {
            /// Calls the function this item was declared from.
            #(#others)*
            #[allow(dead_code)]
            #vis fn call(#inputs) #output #block
        }
    }
}

/// The errors, followed by the original item (so that the rest of the crate still type-checks).
pub fn with_errors(e: syn::Error, item: TokenStream) -> TokenStream {
    let errors = e.to_compile_error();
    quote! { #errors #item }
}

/// The whole expansion of a function macro: checks the function, parses the arguments with
/// `allowed` keys, and emits the unit struct followed by the trait impl that `implement` builds
/// (or, on any error, the unit struct and the errors).
pub fn expand(
    args: TokenStream,
    item: TokenStream,
    macro_name: &str,
    shape: &str,
    max_inputs: usize,
    allowed: &[&str],
    implement: impl FnOnce(&ItemFn, &Args, &mut Option<syn::Error>) -> TokenStream,
) -> TokenStream {
    let f = match parse_fn(item, macro_name, shape, max_inputs) {
        Ok(f) => f,
        Err((e, item)) => return with_errors(e, item),
    };
    let mut errors = None;
    let trait_impl = match Args::parse(args, macro_name, allowed) {
        Ok(a) => implement(&f, &a, &mut errors),
        Err(e) => {
            push(&mut errors, e);
            TokenStream::new()
        }
    };
    let body = unit_struct(&f);
    match errors {
        Some(e) => with_errors(e, body),
        None => quote! { #body #trait_impl },
    }
}
