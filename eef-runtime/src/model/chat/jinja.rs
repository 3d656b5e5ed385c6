//! Hugging Face chat templates (Jinja) rendered with `minijinja`, set up as `transformers`
//! renders them: `trim_blocks` and `lstrip_blocks` on, loop controls, Python string methods
//! (`.strip()`, `.split()`, ... through `minijinja-contrib`'s pycompat), `raise_exception`,
//! `strftime_now` and a `tojson` that writes what Python's `json.dumps(ensure_ascii=False)`
//! writes.
//!
//! `strftime_now` formats a fixed date ([`JinjaTemplate::new`]'s `date`), not the clock: the same
//! run renders the same prompts on any day. Llama-3.x templates put it in the system header.

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};

/// A compiled chat template.
pub struct JinjaTemplate {
    env: Environment<'static>,
}

impl std::fmt::Debug for JinjaTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JinjaTemplate")
    }
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort)`, keys in
/// insertion order as Python's dicts keep them.
fn py_json(v: &Value, indent: Option<usize>, sort: bool, level: usize, out: &mut String) -> Result<(), Error> {
    use minijinja::value::ValueKind;
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => match i64::try_from(v.clone()) {
            Ok(i) if !v.to_string().contains(['.', 'e', 'E', 'i', 'N']) => out.push_str(&i.to_string()),
            _ => out.push_str(&py_float(f64::try_from(v.clone())?)),
        },
        ValueKind::String => py_string(v.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                py_json(x, indent, sort, level + 1, out)?;
            }
            newline(out, level);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if sort {
                keys.sort_by_key(|k| k.to_string());
            }
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                py_string(&k.to_string(), out);
                out.push_str(": ");
                py_json(&v.get_item(k)?, indent, sort, level + 1, out)?;
            }
            newline(out, level);
            out.push('}');
        }
        other => return Err(Error::new(ErrorKind::InvalidOperation, format!("tojson: cannot serialise a {other}"))),
    }
    Ok(())
}

/// Python's `repr` of a float as `json.dumps` writes it.
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let s = format!("{f:?}");
    // Rust writes 1e-5 where Python writes 1e-05.
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}").replace(".0e", "e")
        }
        None => s,
    }
}

fn py_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    py_json(&value, indent, sort_keys == Some(true), 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

impl JinjaTemplate {
    /// Compiles `source`; `date` is what `strftime_now` formats.
    pub fn new(source: &str, date: chrono::NaiveDate) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", |message: String| -> Result<Value, Error> { Err(Error::new(ErrorKind::InvalidOperation, format!("the chat template raised: {message}"))) });
        env.add_function("strftime_now", move |format: String| -> Result<Value, Error> {
            use std::fmt::Write;
            let mut s = String::new();
            write!(s, "{}", date.format(&format)).map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("strftime_now: bad format {format:?}")))?;
            Ok(Value::from(s))
        });
        env.add_template_owned("chat", source.to_owned()).map_err(|e| format!("the chat template does not compile: {e:#}"))?;
        Ok(JinjaTemplate { env })
    }

    /// Renders the template with `context` (messages, `add_generation_prompt`, special tokens).
    pub fn render(&self, context: Value) -> Result<String, String> {
        let t = self.env.get_template("chat").map_err(|e| e.to_string())?;
        t.render(context).map_err(|e| format!("rendering the chat template failed: {e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_writes_what_python_writes() {
        let t = JinjaTemplate::new("{{ v | tojson }}|{{ w | tojson(indent=2) }}", chrono::NaiveDate::default()).unwrap();
        let v = minijinja::context! { name => "search", args => minijinja::context! { q => "red \"mug\"\n", n => 3, x => 1.0e-5, tags => vec![Some("é"), None] } };
        let w = minijinja::context! { a => vec![1, 2] };
        let out = t.render(minijinja::context! { v => v, w => w }).unwrap();
        assert_eq!(out, "{\"name\": \"search\", \"args\": {\"q\": \"red \\\"mug\\\"\\n\", \"n\": 3, \"x\": 1e-05, \"tags\": [\"é\", null]}}|{\n  \"a\": [\n    1,\n    2\n  ]\n}");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(2.5e20), "2.5e+20");
    }

    #[test]
    fn python_methods_and_block_trimming_work() {
        let t = JinjaTemplate::new("{% for m in messages %}\n  {{ m.content.strip() }}|{% endfor %}{{ strftime_now('%d %b %Y') }}", chrono::NaiveDate::from_ymd_opt(2024, 7, 26).unwrap()).unwrap();
        let out = t.render(minijinja::context! { messages => vec![minijinja::context! { content => "  a " }] }).unwrap();
        assert_eq!(out, "  a|26 Jul 2024", "trim_blocks drops the newline after a block tag; the indentation of an expression stays, as in jinja2");
        let t = JinjaTemplate::new("{{ raise_exception('no system role') }}", chrono::NaiveDate::default()).unwrap();
        assert!(t.render(minijinja::context! {}).unwrap_err().contains("no system role"));
    }
}
