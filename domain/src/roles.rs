//! The roles a user can hold (DESIGN.md, "Roles and rules").

use crate::grading::records::AssignmentRole;
use crate::names::text_enum;

text_enum!(
    /// A role a user can be granted, globally or in one study (DESIGN.md, "Roles and rules").
    Role, "role", {
        /// Grades assigned cases, blind to others' grades.
        Grader = "grader",
        /// Resolves disagreements between graders, seeing both grades.
        Adjudicator = "adjudicator",
        /// Runs a study: bundles, batches, assignments, progress, exports.
        Coordinator = "coordinator",
        /// Reads the audit log and statistics; never images.
        Auditor = "auditor",
        /// Manages users, roles, keys and workers; no grading, no images.
        Admin = "admin",
    }
);

impl From<AssignmentRole> for Role {
    fn from(role: AssignmentRole) -> Role {
        match role {
            AssignmentRole::Grader => Role::Grader,
            AssignmentRole::Adjudicator => Role::Adjudicator,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_name_reads_back_and_an_unknown_one_is_an_error() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        let err = "superuser".parse::<Role>().unwrap_err();
        assert_eq!(err.to_string(), "unknown role `superuser`");
    }
}
