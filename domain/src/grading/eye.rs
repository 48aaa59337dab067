//! Laterality of per-eye grade values.
//!
//! A per-eye field holds one value for the right eye (OD) and one for the left eye (OS). Grades
//! never take `OU` (both eyes): a value that concerns the person is a person-level field, so this
//! is a two-valued type rather than [`crate::manifest::Eye`].

use serde::{Deserialize, Serialize};

/// The eye a per-eye value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Eye {
    /// Oculus dexter, the right eye.
    #[serde(rename = "OD")]
    Od,
    /// Oculus sinister, the left eye.
    #[serde(rename = "OS")]
    Os,
}

impl Eye {
    /// Both eyes, in the order forms, exports and problem lists use: OD, then OS.
    pub const BOTH: [Eye; 2] = [Eye::Od, Eye::Os];

    /// The JSON spelling: `OD` or `OS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Eye::Od => "OD",
            Eye::Os => "OS",
        }
    }

    /// The eye named by its JSON spelling, if it is one.
    pub fn from_code(code: &str) -> Option<Eye> {
        match code {
            "OD" => Some(Eye::Od),
            "OS" => Some(Eye::Os),
            _ => None,
        }
    }

    /// The suffix of export columns: `od` or `os`.
    pub fn column_suffix(self) -> &'static str {
        match self {
            Eye::Od => "od",
            Eye::Os => "os",
        }
    }

    /// The Korean name used in labels: 우안 (right eye) or 좌안 (left eye).
    pub fn korean(self) -> &'static str {
        match self {
            Eye::Od => "우안",
            Eye::Os => "좌안",
        }
    }
}

impl std::fmt::Display for Eye {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Eye> for crate::manifest::Eye {
    fn from(eye: Eye) -> crate::manifest::Eye {
        match eye {
            Eye::Od => crate::manifest::Eye::Od,
            Eye::Os => crate::manifest::Eye::Os,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eyes_spell_od_and_os() {
        assert_eq!(serde_json::to_string(&Eye::BOTH).unwrap(), r#"["OD","OS"]"#);
        assert_eq!(Eye::from_code("OS"), Some(Eye::Os));
        assert_eq!(Eye::from_code("OU"), None);
        assert_eq!(
            crate::manifest::Eye::from(Eye::Od),
            crate::manifest::Eye::Od
        );
        assert!(serde_json::from_str::<Eye>(r#""OU""#).is_err());
    }
}
