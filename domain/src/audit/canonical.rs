//! The canonical JSON text of event details (see the module documentation of
//! [`audit`](super) for the exact form).

use serde_json::Value;

use super::chain::MAX_DETAILS_BYTES;
use super::error::ChainError;

/// Deterministic JSON text of `value`: object keys sorted by their UTF-8 bytes at every
/// depth, no whitespace, serde_json's number formatting, minimal string escaping.
/// Iterative, so deep nesting cannot overflow the stack.
pub fn canonical_json(value: &Value) -> String {
    enum Task<'a> {
        Value(&'a Value),
        Key(&'a str),
        Text(&'static str),
    }
    let mut out = String::new();
    let mut stack = vec![Task::Value(value)];
    while let Some(task) = stack.pop() {
        match task {
            Task::Text(text) => out.push_str(text),
            Task::Key(key) => push_json_string(&mut out, key),
            Task::Value(Value::Null) => out.push_str("null"),
            Task::Value(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Task::Value(Value::Number(n)) => out.push_str(&n.to_string()),
            Task::Value(Value::String(s)) => push_json_string(&mut out, s),
            Task::Value(Value::Array(items)) => {
                out.push('[');
                stack.push(Task::Text("]"));
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push(Task::Value(item));
                    if i > 0 {
                        stack.push(Task::Text(","));
                    }
                }
            }
            Task::Value(Value::Object(map)) => {
                out.push('{');
                stack.push(Task::Text("}"));
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                for (i, (key, item)) in entries.into_iter().enumerate().rev() {
                    stack.push(Task::Value(item));
                    stack.push(Task::Text(":"));
                    stack.push(Task::Key(key));
                    if i > 0 {
                        stack.push(Task::Text(","));
                    }
                }
            }
        }
    }
    out
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let code = u32::from(c);
                out.push_str("\\u00");
                out.push(hex_digit(code >> 4));
                out.push(hex_digit(code & 0xf));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn hex_digit(n: u32) -> char {
    char::from_digit(n, 16).unwrap_or('0')
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The canonical text of event details, refusing anything but a JSON object of at most
/// [`MAX_DETAILS_BYTES`] canonical bytes.
pub fn canonical_details(details: &Value) -> Result<String, ChainError> {
    if !details.is_object() {
        return Err(ChainError::DetailsNotObject(json_kind(details)));
    }
    let text = canonical_json(details);
    if text.len() > MAX_DETAILS_BYTES {
        return Err(ChainError::DetailsTooLarge {
            size: text.len(),
            max: MAX_DETAILS_BYTES,
        });
    }
    Ok(text)
}

/// Whether stored details text is exactly the canonical JSON of an object.
pub fn is_canonical_details(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => value.is_object() && canonical_json(&value) == text,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_nested_keys_and_is_stable() {
        let value = json!({
            "b": {"z": 1, "a": [{"y": null, "x": false}]},
            "a": "é\u{1}\"\\",
            "B": 2.5,
            "aa": -3,
        });
        let text = canonical_json(&value);
        assert_eq!(
            text,
            r#"{"B":2.5,"a":"é\u0001\"\\","aa":-3,"b":{"a":[{"x":false,"y":null}],"z":1}}"#
        );
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reparsed, value);
        assert_eq!(canonical_json(&reparsed), text);
        assert!(is_canonical_details(&text));
    }

    #[test]
    fn canonical_strings_and_numbers_match_serde_json() {
        let mut text: String = (0u32..0x80).filter_map(char::from_u32).collect();
        text.push_str("é€😀\u{2028}");
        let value = Value::String(text);
        assert_eq!(
            canonical_json(&value),
            serde_json::to_string(&value).unwrap()
        );
        for number in [
            json!(0),
            json!(-1),
            json!(u64::MAX),
            json!(1e300),
            json!(0.1),
        ] {
            assert_eq!(
                canonical_json(&number),
                serde_json::to_string(&number).unwrap()
            );
        }
    }

    #[test]
    fn deeply_nested_json_does_not_overflow() {
        let mut value = json!({});
        for _ in 0..10_000 {
            value = Value::Array(vec![value]);
        }
        let text = canonical_json(&value);
        assert_eq!(text.len(), 2 + 2 * 10_000);
        std::mem::forget(value); // serde_json's own drop is recursive
    }
}
