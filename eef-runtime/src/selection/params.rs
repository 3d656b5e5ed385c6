//! Selector parameters: a method's `params` table (`[[methods]] selector = "short_rft"`,
//! `params = { max_turns = 10 }`), read into the selector's own `Deserialize` type with the
//! configuration's file, line and column on every error.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{PlanContext, Selection, Selector, TaskGroup};
use crate::config::{line_column, ConfigError};
use crate::trajectory::StartState;

/// Where a method's `params` came from: the configuration's text (positions known) or a value
/// built in code.
#[derive(Clone, Debug)]
enum Source<'a> {
    Text {
        path: &'a Path,
        document: &'a str,
        span: Range<usize>,
    },
    /// A value; `at`: the document and byte offset it was read from, when known.
    Value {
        path: &'a Path,
        value: &'a toml::Value,
        at: Option<(&'a str, usize)>,
    },
}

/// One method's `params` table, as a selector reads it ([`Selector::configure`]).
#[derive(Clone, Debug)]
pub struct Params<'a> {
    /// The method's label (for messages).
    method: String,
    source: Option<Source<'a>>,
}

impl<'a> Params<'a> {
    /// No `params` table.
    pub fn absent(method: impl Into<String>) -> Self {
        Params {
            method: method.into(),
            source: None,
        }
    }

    /// A table read from `document` (the configuration file at `path`), at byte range `span`.
    pub fn from_text(
        method: impl Into<String>,
        path: &'a Path,
        document: &'a str,
        span: Range<usize>,
    ) -> Self {
        Params {
            method: method.into(),
            source: Some(Source::Text {
                path,
                document,
                span,
            }),
        }
    }

    /// A table given as a value; `at`: the document and byte offset it was read from (errors
    /// point there), when known.
    pub fn from_value(
        method: impl Into<String>,
        path: &'a Path,
        value: &'a toml::Value,
        at: Option<(&'a str, usize)>,
    ) -> Self {
        Params {
            method: method.into(),
            source: Some(Source::Value { path, value, at }),
        }
    }

    /// Whether the method has no `params`.
    pub fn is_absent(&self) -> bool {
        self.source.is_none()
    }

    /// The method's label.
    pub fn method(&self) -> &str {
        &self.method
    }

    fn error(&self, offset: Option<usize>, message: &str) -> ConfigError {
        let m = format!("method {:?}, `params`: {}", self.method, message.trim());
        match &self.source {
            Some(Source::Text {
                path,
                document,
                span,
            }) => {
                let (line, column) = line_column(document, offset.unwrap_or(span.start));
                ConfigError {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: m,
                }
            }
            Some(Source::Value {
                path,
                at: Some((document, at)),
                ..
            }) => {
                let (line, column) = line_column(document, *at);
                ConfigError {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: m,
                }
            }
            Some(Source::Value { path, at: None, .. }) => ConfigError::invalid(path, m),
            None => ConfigError::invalid(Path::new("<config>"), m),
        }
    }

    /// The table as `P`: `P::default()` when the method has none.
    pub fn parse<P: SelectorParams>(&self) -> Result<P, ConfigError> {
        match &self.source {
            None => Ok(P::default()),
            Some(Source::Text { document, span, .. }) => {
                let text = &document[span.clone()];
                // Read as a document of its own (`p = <table>`), which keeps positions; shifted
                // back onto the configuration file.
                const PREFIX: &str = "p = ";
                match toml::from_str::<Wrapped<P>>(&format!("{PREFIX}{text}")) {
                    Ok(w) => Ok(w.p),
                    Err(e) => {
                        let at = unknown_key_offset(text, e.message())
                            .or_else(|| e.span().map(|s| s.start.saturating_sub(PREFIX.len())));
                        Err(self.error(at.map(|o| span.start + o), e.message()))
                    }
                }
            }
            Some(Source::Value { value, .. }) => {
                P::deserialize((*value).clone()).map_err(|e| self.error(None, e.message()))
            }
        }
    }

    /// The table laid over `base` (its keys replace `base`'s fields) as `P`: how the built-in
    /// selectors take per-method overrides of their `[eef]` / `[rft]` sections.
    pub fn overlay<P: DeserializeOwned + Serialize + Default>(
        &self,
        base: &P,
    ) -> Result<P, ConfigError> {
        if self.source.is_none() {
            let value =
                toml::Value::try_from(base).map_err(|e| self.error(None, &e.to_string()))?;
            return P::deserialize(value).map_err(|e| self.error(None, e.message()));
        }
        let table: toml::Table = self.parse()?;
        let mut merged = match toml::Value::try_from(base) {
            Ok(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        merged.extend(table);
        match P::deserialize(toml::Value::Table(merged)) {
            Ok(p) => Ok(p),
            Err(e) => {
                // Read the table alone to point at the offending key (with `#[serde(default)]`
                // on `P`, as the built-in selectors have, the table alone fails on that key only).
                match self.parse::<P>() {
                    Err(positioned) => Err(positioned),
                    Ok(_) => Err(self.error(None, e.message())),
                }
            }
        }
    }

    /// Refuses a table for a selector that takes none.
    pub fn none(&self, selector: &str) -> Result<(), ConfigError> {
        match self.source {
            None => Ok(()),
            Some(_) => Err(self.error(
                None,
                &format!("selector {selector:?} takes no parameters: remove `params`, or give its #[selector] function a second argument `params: &YourParams` (a `Deserialize + Default` struct)"),
            )),
        }
    }
}

#[derive(serde::Deserialize)]
struct Wrapped<P> {
    p: P,
}

/// Where the key an "unknown field `k`" message names is written in `text` (toml spans that
/// error on the whole inline table).
fn unknown_key_offset(text: &str, message: &str) -> Option<usize> {
    let key = message.strip_prefix("unknown field `")?.split('`').next()?;
    let mut from = 0;
    while let Some(i) = text[from..].find(key).map(|i| i + from) {
        let before = text[..i].trim_end().chars().last();
        let after = text[i + key.len()..].trim_start();
        if matches!(before, Some('{' | ',' | '\n')) && after.starts_with('=') {
            return Some(i);
        }
        from = i + key.len();
    }
    None
}

/// What a selector's parameters type must be: `serde::Deserialize` (read from the method's
/// `params` table) and `Default` (the values when the table is absent). Implemented for every
/// such type; it exists so that a type that is not gets one error that says what to derive,
/// instead of serde's list of the types that do implement `Deserialize`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a selector's parameters: it must implement `serde::Deserialize` and `Default`",
    label = "add `#[derive(serde::Deserialize, Default)]` to `{Self}` (or implement `Default` by hand)"
)]
pub trait SelectorParams: DeserializeOwned + Default {}

impl<T: DeserializeOwned + Default> SelectorParams for T {}

/// A selector function bound to its parameters: what `#[selector]` on
/// `fn name(group: &TaskGroup<'_>, params: &P) -> Selection` builds for each method.
pub struct Configured<P> {
    name: &'static str,
    params: P,
    select: fn(&TaskGroup<'_>, &P) -> Selection,
    plan: Option<fn(&PlanContext<'_>, &P) -> Vec<StartState>>,
}

impl<P> Configured<P> {
    /// `select` (and `plan`, when given) called with `params`.
    pub fn new(
        name: &'static str,
        params: P,
        select: fn(&TaskGroup<'_>, &P) -> Selection,
        plan: Option<fn(&PlanContext<'_>, &P) -> Vec<StartState>>,
    ) -> Self {
        Configured {
            name,
            params,
            select,
            plan,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &P {
        &self.params
    }
}

impl<P: Send + Sync + 'static> Selector for Configured<P> {
    fn name(&self) -> &str {
        self.name
    }

    fn plan(&self, ctx: &PlanContext<'_>) -> Vec<StartState> {
        match self.plan {
            Some(plan) => plan(ctx, &self.params),
            None => vec![StartState::TaskStart],
        }
    }

    fn select(&self, group: &TaskGroup<'_>) -> Selection {
        (self.select)(group, &self.params)
    }
}

/// `selector` configured with `params` (for the macro's generated code).
pub fn configured<P: Send + Sync + 'static>(c: Configured<P>) -> Option<Arc<dyn Selector>> {
    Some(Arc::new(c))
}
