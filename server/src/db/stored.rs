//! Columns that hold JSON text, read into parsed values.
//!
//! Each type here is a `#[sqlx(try_from = "…")]` target: a column whose text does not parse as
//! what the schema promises fails the read with a decode error naming the column (a 500 with the
//! cause logged), instead of reading as `null` and being exported or compared as "no value".

use serde_json::{Map, Value as Json};
use uuid::Uuid;

/// Why a stored JSON column does not hold what it should.
#[derive(Debug, thiserror::Error)]
#[error("stored JSON is not {expected}: {detail}")]
pub struct BadStoredJson {
    expected: &'static str,
    detail: String,
}

fn bad(expected: &'static str, detail: impl ToString) -> BadStoredJson {
    BadStoredJson {
        expected,
        detail: detail.to_string(),
    }
}

/// A JSON object column (grade values).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject(pub Map<String, Json>);

impl TryFrom<String> for StoredObject {
    type Error = BadStoredJson;

    fn try_from(text: String) -> Result<Self, BadStoredJson> {
        match serde_json::from_str(&text) {
            Ok(Json::Object(map)) => Ok(StoredObject(map)),
            Ok(other) => Err(bad("an object", format!("found {}", kind(&other)))),
            Err(err) => Err(bad("an object", err)),
        }
    }
}

/// A nullable JSON object column (final values of an adjudication round).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredObjectOpt(pub Option<Map<String, Json>>);

impl TryFrom<Option<String>> for StoredObjectOpt {
    type Error = BadStoredJson;

    fn try_from(text: Option<String>) -> Result<Self, BadStoredJson> {
        Ok(StoredObjectOpt(
            text.map(StoredObject::try_from).transpose()?.map(|o| o.0),
        ))
    }
}

/// Any JSON value column (disagreement lists).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredJson(pub Json);

impl TryFrom<String> for StoredJson {
    type Error = BadStoredJson;

    fn try_from(text: String) -> Result<Self, BadStoredJson> {
        serde_json::from_str(&text)
            .map(StoredJson)
            .map_err(|err| bad("JSON", err))
    }
}

/// A nullable JSON value column (view states).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredJsonOpt(pub Option<Json>);

impl TryFrom<Option<String>> for StoredJsonOpt {
    type Error = BadStoredJson;

    fn try_from(text: Option<String>) -> Result<Self, BadStoredJson> {
        Ok(StoredJsonOpt(
            text.map(StoredJson::try_from).transpose()?.map(|j| j.0),
        ))
    }
}

/// A JSON list of ids column (the grades an adjudication round compared).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredIds(pub Vec<Uuid>);

impl TryFrom<String> for StoredIds {
    type Error = BadStoredJson;

    fn try_from(text: String) -> Result<Self, BadStoredJson> {
        serde_json::from_str(&text)
            .map(StoredIds)
            .map_err(|err| bad("a list of ids", err))
    }
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_is_not_what_the_column_holds_is_an_error_naming_what_was_expected() {
        assert!(StoredObject::try_from(r#"{"dr_grade":{"OD":2}}"#.to_owned()).is_ok());
        let err = StoredObject::try_from("{not json".to_owned()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("stored JSON is not an object: "),
            "{err}"
        );
        let err = StoredObject::try_from("[1]".to_owned()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stored JSON is not an object: found a list"
        );
        assert_eq!(
            StoredObjectOpt::try_from(None).unwrap(),
            StoredObjectOpt(None)
        );
        assert!(StoredObjectOpt::try_from(Some("null".to_owned())).is_err());
        assert!(StoredJsonOpt::try_from(Some("".to_owned())).is_err());
        let id = Uuid::from_u128(7);
        assert_eq!(
            StoredIds::try_from(format!(r#"["{id}"]"#)).unwrap(),
            StoredIds(vec![id])
        );
        assert!(StoredIds::try_from(r#"["C-0001"]"#.to_owned()).is_err());
    }
}
