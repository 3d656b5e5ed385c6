//! `#[environment]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl};

use crate::args::{push, Args};
use crate::fn_item::{param_span, with_errors};

/// What a method must look like.
struct MethodSpec {
    name: &'static str,
    mutable: bool,
    args: usize,
    required: bool,
    signature: &'static str,
}

const METHODS: &[MethodSpec] = &[
    MethodSpec { name: "tasks", mutable: false, args: 0, required: true, signature: "fn tasks(&self) -> Vec<Task>" },
    MethodSpec {
        name: "reset",
        mutable: true,
        args: 2,
        required: true,
        signature: "fn reset(&mut self, task: &Task, seed: u64) -> String",
    },
    MethodSpec { name: "step", mutable: true, args: 1, required: true, signature: "fn step(&mut self, action: &str) -> StepResult" },
    MethodSpec {
        name: "valid_actions",
        mutable: false,
        args: 0,
        required: false,
        signature: "fn valid_actions(&self) -> Option<Vec<String>>",
    },
    MethodSpec { name: "max_steps", mutable: false, args: 1, required: false, signature: "fn max_steps(&self, task: &Task) -> usize" },
    MethodSpec {
        name: "replay",
        mutable: true,
        args: 3,
        required: false,
        signature: "fn replay(&mut self, task: &Task, seed: u64, prefix: &[String]) -> ReplayOutcome",
    },
];

fn check_method(f: &ImplItemFn, spec: &MethodSpec, errors: &mut Option<syn::Error>) {
    let sig = &f.sig;
    if let Some(a) = &sig.asyncness {
        push(
            errors,
            syn::Error::new_spanned(a, format!("`{}` must not be async: environments run on blocking worker threads; expected `{}`", spec.name, spec.signature)),
        );
    }
    if !sig.generics.params.is_empty() {
        push(errors, syn::Error::new_spanned(&sig.generics, format!("`{}` cannot be generic; expected `{}`", spec.name, spec.signature)));
    }
    let receiver = sig.inputs.first().and_then(|a| match a {
        FnArg::Receiver(r) => Some(r),
        FnArg::Typed(_) => None,
    });
    let want = if spec.mutable { "&mut self" } else { "&self" };
    match receiver {
        None => push(
            errors,
            syn::Error::new(
                sig.ident.span(),
                format!("`{}` must take `{want}` as its first parameter; expected `{}`", spec.name, spec.signature),
            ),
        ),
        Some(r) => {
            let ok = r.reference.is_some() && (r.mutability.is_some() == spec.mutable) && r.colon_token.is_none();
            if !ok {
                let why = if spec.mutable {
                    "the rollout engine gives each worker its own instance and mutates it"
                } else {
                    "it only reads the environment"
                };
                push(
                    errors,
                    syn::Error::new_spanned(r, format!("`{}` must take `{want}` ({why}); expected `{}`", spec.name, spec.signature)),
                );
            }
        }
    }
    let n = sig.inputs.len().saturating_sub(1);
    if receiver.is_some() && n != spec.args {
        push(
            errors,
            syn::Error::new(
                sig.paren_token.span.join(),
                format!("`{}` takes {} parameter(s) besides `{want}`, found {n}; expected `{}`", spec.name, spec.args, spec.signature),
            ),
        );
    }
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut imp: ItemImpl = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(_) => {
            let head: TokenStream = item.clone().into_iter().take(2).collect();
            let e = syn::Error::new_spanned(
                head,
                "#[environment] goes on an inherent `impl` block that defines `tasks`, `reset` and `step`, \
                 e.g. `#[environment(max_steps = 10)] impl MyEnv { ... }`",
            );
            return with_errors(e, item);
        }
    };
    if let Some((_, path, _)) = &imp.trait_ {
        let e = syn::Error::new_spanned(
            path,
            "#[environment] goes on an inherent `impl MyEnv { ... }` block, not a trait impl: write the methods \
             there and the macro implements `Environment` for you (or drop the attribute and implement the trait by hand)",
        );
        return with_errors(e, item);
    }

    let mut errors = None;
    // `#[env(skip)]` marks a deliberate helper whose name is close to a hook's; it is consumed
    // here (the emitted impl carries no such attribute).
    let mut helpers: Vec<syn::Ident> = Vec::new();
    for item in &mut imp.items {
        if let ImplItem::Fn(f) = item {
            let mut keep = Vec::new();
            for attr in std::mem::take(&mut f.attrs) {
                if !attr.path().is_ident("env") {
                    keep.push(attr);
                    continue;
                }
                match attr.parse_args::<syn::Ident>() {
                    Ok(i) if i == "skip" => helpers.push(f.sig.ident.clone()),
                    _ => push(&mut errors, syn::Error::new_spanned(&attr, "the only `env` attribute is `#[env(skip)]`, which marks a helper method that is not an environment hook")),
                }
            }
            f.attrs = keep;
        }
    }
    let hook_names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
    for item in &imp.items {
        if let ImplItem::Fn(f) = item {
            let name = f.sig.ident.to_string();
            if helpers.contains(&f.sig.ident) || hook_names.contains(&name.as_str()) {
                continue;
            }
            if let Some(hook) = crate::args::closest(&name, &hook_names) {
                push(
                    &mut errors,
                    syn::Error::new(
                        f.sig.ident.span(),
                        format!("`{name}` is not an environment hook, so #[environment] would ignore it; did you mean `{hook}`? (for a helper method of that name, mark it `#[env(skip)]`)"),
                    ),
                );
            }
        }
    }
    let mut name = None;
    let mut max_steps = None;
    match Args::parse(args, "environment", &["name", "max_steps"]) {
        Ok(a) => {
            match a.string("name") {
                Ok(n) => name = n.map(|(n, _)| n),
                Err(e) => push(&mut errors, e),
            }
            match a.usize("max_steps") {
                Ok(Some(0)) => push(
                    &mut errors,
                    syn::Error::new_spanned(a.get("max_steps"), "`max_steps` must be at least 1, e.g. `max_steps = 10`"),
                ),
                Ok(m) => max_steps = m,
                Err(e) => push(&mut errors, e),
            }
        }
        Err(e) => push(&mut errors, e),
    }

    let arguments_failed = errors.is_some();

    let methods: Vec<&ImplItemFn> = imp
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) => Some(f),
            _ => None,
        })
        .collect();
    let find = |n: &str| methods.iter().copied().find(|f| f.sig.ident == n);
    let self_span = imp.self_ty.span();
    for spec in METHODS {
        match find(spec.name) {
            Some(f) => check_method(f, spec, &mut errors),
            None if spec.required => push(
                &mut errors,
                syn::Error::new(
                    self_span,
                    format!("#[environment] needs a `{}` method in this impl block: add `{}`", spec.name, spec.signature),
                ),
            ),
            None => {}
        }
    }
    let has_max_steps_fn = find("max_steps").is_some();
    if max_steps.is_some() && has_max_steps_fn {
        push(
            &mut errors,
            syn::Error::new(self_span, "the step limit is given twice: remove `max_steps = ...` or the `max_steps` method"),
        );
    }
    // With a malformed argument list, that error already says what to fix.
    if max_steps.is_none() && !has_max_steps_fn && !arguments_failed {
        push(
            &mut errors,
            syn::Error::new(
                Span::call_site(),
                "set a step limit: `#[environment(max_steps = 10)]`, or define `fn max_steps(&self, task: &Task) -> usize`",
            ),
        );
    }
    if let Some(e) = errors {
        return with_errors(e, imp.into_token_stream());
    }

    let self_ty = &imp.self_ty;
    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    let name = name.unwrap_or_else(|| type_name(self_ty));
    let p = quote!(::eef_runtime::__private);
    let call = |m: &str| {
        let ident = syn::Ident::new(m, find(m).map_or(Span::call_site(), |f| f.sig.ident.span()));
        quote_spanned!(ident.span()=> <#self_ty>::#ident)
    };
    // The arguments passed to the user's method carry the spans of its parameter types, so a
    // parameter of the wrong type is reported on it (`action: String` where `&str` is passed).
    let args = |m: &str, names: &[&str]| -> Vec<TokenStream> {
        names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let span = find(m).map_or_else(Span::call_site, |f| param_span(&f.sig, k));
                let arg = syn::Ident::new(n, span);
                quote_spanned!(span=> ::eef_runtime::__private::EnvParam::from_env(#arg))
            })
            .collect()
    };
    // The conversions are spanned on the user's return types, so a wrong one is reported on the
    // line to change.
    let ret_span = |m: &str| find(m).map_or(Span::call_site(), |f| match &f.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => f.sig.ident.span(),
    });
    // A hook whose value is returned as it is: bound to a name carrying the user's return type's
    // span, so a wrong type ("expected `Vec<Task>`, found `Vec<String>`") is reported there.
    let returned = |m: &str, call: TokenStream| {
        let value = syn::Ident::new("__eef_value", ret_span(m));
        quote_spanned!(ret_span(m)=> {
            let #value = #call;
            #value
        })
    };
    let tasks = returned("tasks", { let f = call("tasks"); quote!(#f(self)) });
    let reset = call("reset");
    let step = call("step");
    let valid = find("valid_actions").map(|_| {
        let f = returned("valid_actions", { let f = call("valid_actions"); quote!(#f(self)) });
        quote! {
            fn valid_actions(&self) -> #p::Option<#p::Vec<#p::String>> {
                #f
            }
        }
    });
    let limit = match max_steps {
        Some(n) => quote!(#n),
        None => returned("max_steps", { let f = call("max_steps"); quote!(#f(self, task)) }),
    };
    let convert = |m: &str, call: TokenStream| {
        let span = ret_span(m);
        // The value is bound first, so the conversion's argument is one identifier carrying the
        // return type's span: the error's primary span is the user's return type, not the
        // attribute. The path is written out inside `quote_spanned!` so that all of it carries it.
        let value = syn::Ident::new("__eef_value", span);
        quote_spanned!(span=> {
            let #value = #call;
            ::eef_runtime::__private::IntoEnvResult::into_env_result(#value)
        })
    };
    let replay = find("replay").map(|_| {
        let f = call("replay");
        let replay_args = args("replay", &["task", "seed", "prefix"]);
        let body = convert("replay", quote!(#f(self, #(#replay_args),*)));
        quote! {
            fn replay(
                &mut self,
                task: &#p::Task,
                seed: u64,
                prefix: &[#p::String],
            ) -> #p::Result<#p::ReplayOutcome, #p::EnvError> {
                #body
            }
        }
    });
    let reset_args = args("reset", &["task", "seed"]);
    let step_args = args("step", &["action"]);
    let reset_body = convert("reset", quote!(#reset(self, #(#reset_args),*)));
    let step_body = convert("step", quote!(#step(self, #(#step_args),*)));
    quote! {
        #imp

        impl #impl_generics #p::Environment for #self_ty #where_clause {
            fn name(&self) -> &str {
                #name
            }
            fn tasks(&self) -> #p::Vec<#p::Task> {
                #tasks
            }
            fn reset(&mut self, task: &#p::Task, seed: u64) -> #p::Result<#p::String, #p::EnvError> {
                #reset_body
            }
            fn step(&mut self, action: &str) -> #p::Result<#p::StepResult, #p::EnvError> {
                #step_body
            }
            #valid
            #[allow(unused_variables)]
            fn max_steps(&self, task: &#p::Task) -> usize {
                #limit
            }
            #replay
        }
    }
}

/// The last path segment of a type, in lower case (`crate::envs::Vault<T>` -> `vault`).
fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map_or_else(|| "environment".to_owned(), |s| s.ident.to_string().to_lowercase()),
        _ => "environment".to_owned(),
    }
}
