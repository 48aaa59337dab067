//! Enumerations stored and sent as lower-case names (`grader`, `in_progress`, `repeat` …).
//!
//! [`text_enum!`](crate::names) declares such an enum with `as_str`, `Display`, `FromStr` and
//! `TryFrom<String>`, so the database layer reads a column straight into it and a name that is
//! not one of its values is an [`UnknownName`] error, never a silent default.

/// A value read from the database or given by a caller that is not one of an enumeration's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownName {
    /// What was being parsed (`role`, `assignment status` ...).
    pub kind: &'static str,
    /// The text that did not match.
    pub value: String,
}

/// Declares a fieldless enum stored as text, with `as_str`, `Display`, `FromStr` and `TryFrom<String>`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name stored in the database and sent in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;

            fn from_str(text: &str) -> Result<Self, $crate::names::UnknownName> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::names::UnknownName { kind: $kind, value: text.to_owned() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::names::UnknownName;

            fn try_from(text: String) -> Result<Self, $crate::names::UnknownName> {
                text.parse()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;
