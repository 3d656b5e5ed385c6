//! Parsing of `key = value` attribute arguments with precise errors.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, MetaNameValue, Token};

/// The parsed arguments, in order.
pub struct Args {
    pub pairs: Vec<(syn::Ident, Expr)>,
}

impl Args {
    /// Parses `a = 1, b = "x"`, accepting only the keys in `allowed`.
    pub fn parse(tokens: TokenStream, macro_name: &str, allowed: &[&str]) -> syn::Result<Args> {
        let list = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(tokens).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!(
                    "#[{macro_name}] takes `key = value` arguments separated by commas ({}); {e}",
                    expected(allowed)
                ),
            )
        })?;
        let mut pairs: Vec<(syn::Ident, Expr)> = Vec::new();
        let mut errors: Option<syn::Error> = None;
        for nv in list {
            let Some(key) = nv.path.get_ident().cloned() else {
                push(&mut errors, syn::Error::new_spanned(&nv.path, format!("expected a plain argument name: {}", expected(allowed))));
                continue;
            };
            if !allowed.iter().any(|a| key == a) {
                let hint = match closest(&key.to_string(), allowed) {
                    Some(near) => format!("did you mean `{near}`? "),
                    None => String::new(),
                };
                push(
                    &mut errors,
                    syn::Error::new(key.span(), format!("unknown argument `{key}` for #[{macro_name}]; {hint}{}", expected(allowed))),
                );
                continue;
            }
            if pairs.iter().any(|(k, _)| *k == key) {
                push(&mut errors, syn::Error::new(key.span(), format!("`{key}` is given twice; keep one")));
                continue;
            }
            pairs.push((key, nv.value));
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(Args { pairs }),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Expr> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string literal argument.
    pub fn string(&self, key: &str) -> syn::Result<Option<(String, Span)>> {
        match self.get(key) {
            None => Ok(None),
            Some(Expr::Lit(ExprLit { lit: Lit::Str(s), .. })) => Ok(Some((s.value(), s.span()))),
            Some(other) => Err(syn::Error::new_spanned(other, format!("`{key}` takes a string literal, e.g. `{key} = \"my-name\"`"))),
        }
    }

    /// A non-negative integer literal argument.
    pub fn usize(&self, key: &str) -> syn::Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(Expr::Lit(ExprLit { lit: Lit::Int(i), .. })) => i
                .base10_parse::<usize>()
                .map(Some)
                .map_err(|_| syn::Error::new(i.span(), format!("`{key}` must be a non-negative integer, e.g. `{key} = 10`"))),
            Some(other) => Err(syn::Error::new_spanned(other, format!("`{key}` takes an integer literal, e.g. `{key} = 10`"))),
        }
    }

    /// A number literal (float or integer) argument.
    pub fn number(&self, key: &str) -> syn::Result<Option<f64>> {
        let bad = |span: &dyn quote::ToTokens| syn::Error::new_spanned(span, format!("`{key}` takes a number literal, e.g. `{key} = 1.0`"));
        match self.get(key) {
            None => Ok(None),
            Some(Expr::Lit(ExprLit { lit: Lit::Float(f), .. })) => f.base10_parse::<f64>().map(Some).map_err(|_| bad(f)),
            Some(Expr::Lit(ExprLit { lit: Lit::Int(i), .. })) => i.base10_parse::<f64>().map(Some).map_err(|_| bad(i)),
            Some(other) => Err(bad(other)),
        }
    }

    /// A path argument (e.g. a function name).
    pub fn path(&self, key: &str) -> syn::Result<Option<syn::Path>> {
        match self.get(key) {
            None => Ok(None),
            Some(Expr::Path(p)) => Ok(Some(p.path.clone())),
            Some(other) => Err(syn::Error::new_spanned(other, format!("`{key}` takes the path of a function, e.g. `{key} = my_plan`"))),
        }
    }
}

/// The candidate `word` is most likely a misspelling of: within one edit (a swap of two
/// neighbouring letters counts as one) for names of up to three characters, two for longer ones
/// (`nmae` -> `name`, `plna` -> `plan`, `sucess` -> `success`).
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d > 0 && *d <= if c.len() >= 4 { 2 } else { 1 })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn expected(allowed: &[&str]) -> String {
    let names: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
    format!("expected {}", names.join(", "))
}

/// Adds `e` to an accumulated error.
pub fn push(acc: &mut Option<syn::Error>, e: syn::Error) {
    match acc {
        Some(a) => a.combine(e),
        None => *acc = Some(e),
    }
}
