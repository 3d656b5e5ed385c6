//! The page after `click[Buy Now]`, as the original text mode shows it: `done_page.html` rendered
//! with what `SimServer.done` passes (the reward, the ASIN and the chosen options; every other
//! field is empty or `None`), hidden parts included (the text conversion keeps `display:none`
//! and `hidden` elements).

/// Writes `s` as a JSON string the way Python's `json.dumps` does with `ensure_ascii=True`
/// (non-ASCII as `\uXXXX`, surrogate pairs above the BMP), then with Flask's `htmlsafe` escapes
/// (`<`, `>`, `&`, `'` as `\u003c`, `\u003e`, `\u0026`, `\u0027`).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\'' => out.push_str("\\u0027"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The chosen options as Flask 2.1's `tojson` filter writes them: keys sorted, `", "` and `": "`
/// separators, ASCII only, HTML-safe.
pub fn options_tojson(options: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = options.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("{");
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_string(k, &mut out);
        out.push_str(": ");
        json_string(v, &mut out);
    }
    out.push('}');
    out
}

/// The text elements of the done page, in page order (joined by ` [SEP] ` by the caller).
pub fn texts(asin: &str, options: &[(String, String)], reward: &str) -> Vec<String> {
    let mut t: Vec<String> = ["Thank you for shopping with us!", "Your code:", "None", "(Paste it in your MTurk interface.)", "Purchased", "asin"]
        .map(String::from)
        .to_vec();
    t.push(asin.to_owned());
    t.push("options".into());
    t.push(options_tojson(options));
    for label in ["attrs", "category", "query", "product category"] {
        t.push(label.into());
        t.push("None".into());
    }
    t.extend(
        ["Target", "asin", "options", "attrs", "price upper", "instuction text", "category", "product category", "query", "Goal", "None", "Reward"]
            .map(String::from),
    );
    t.extend(["Your score (min 0.0, max 1.0)".to_owned(), reward.to_owned(), "Reward Details".into(), "None".into()]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_written_as_flask_tojson() {
        let o = vec![("size".to_owned(), "8 fl oz".to_owned()), ("color".to_owned(), "rosé <b>&'s".to_owned())];
        assert_eq!(options_tojson(&o), r#"{"color": "ros\u00e9 \u003cb\u003e\u0026\u0027s", "size": "8 fl oz"}"#);
        assert_eq!(options_tojson(&[]), "{}");
        assert_eq!(options_tojson(&[("a".into(), "😀".into())]), r#"{"a": "\ud83d\ude00"}"#);
    }
}
