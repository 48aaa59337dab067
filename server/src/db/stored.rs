//! Columns that hold JSON text, read into parsed values.
//!
//! Each type here decodes from a text column: a column whose text does not parse as
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

/// Any JSON value column (disagreement lists, view states).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJson(pub Json);

impl TryFrom<String> for StoredJson {
    type Error = BadStoredJson;

    fn try_from(text: String) -> Result<Self, BadStoredJson> {
        serde_json::from_str(&text)
            .map(StoredJson)
            .map_err(|err| bad("JSON", err))
    }
}

/// A JSON list of ids column (the grades an adjudication round compared).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredIds(pub Vec<Uuid>);

impl TryFrom<String> for StoredIds {
    type Error = BadStoredJson;

    fn try_from(text: String) -> Result<Self, BadStoredJson> {
        serde_json::from_str(&text)
            .map(StoredIds)
            .map_err(|err| bad("a list of ids", err))
    }
}

/// Reads each type from a text column on any backend, parsing as it decodes: a failure is a
/// `ColumnDecode` error whose message names the column and what it should hold. (Decoding here
/// rather than through `#[sqlx(try_from)]`, whose derive loses the error's text.) `NULL` reads as
/// `None` through `Option<…>`.
macro_rules! decoded_from_text {
    ($($name:ident),+) => {$(
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok($name::try_from(text)?)
            }
        }
    )+};
}
decoded_from_text!(StoredObject, StoredJson, StoredIds);

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
        assert!(StoredObject::try_from("null".to_owned()).is_err());
        assert!(StoredJson::try_from(String::new()).is_err());
        let id = Uuid::from_u128(7);
        assert_eq!(
            StoredIds::try_from(format!(r#"["{id}"]"#)).unwrap(),
            StoredIds(vec![id])
        );
        assert!(StoredIds::try_from(r#"["C-0001"]"#.to_owned()).is_err());
    }
}
