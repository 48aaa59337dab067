//! Who may do what: the rules of DESIGN.md "Roles and rules" as pure functions.
//!
//! No I/O here: callers load the [`Principal`] (the signed-in user and their grants) and the
//! facts about the resource (a case's study and the user's assignments on it), and these
//! functions decide. Everything is denied unless a rule below allows it.
//!
//! | role | grants |
//! |---|---|
//! | grader | view the images of cases assigned to it as grader (with the grader role in that study) |
//! | adjudicator | view the images of cases assigned to it as adjudicator (with the role in that study) |
//! | coordinator | the study's case list, metadata and assignments; no images unless also assigned; none of it in a study where the user also grades (blinding) |
//! | auditor | the audit log and statistics; never images |
//! | admin | users and role grants; no images unless also assigned |

use uuid::Uuid;

use crate::db::{AssignmentRole, Role};

/// One role held by the signed-in user, globally (`study: None`) or in one study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// The study it is limited to; `None` for every study.
    pub study: Option<Uuid>,
}

/// The signed-in user as the rules see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id.
    pub user_id: Uuid,
    /// Every role the user holds.
    pub grants: Vec<Grant>,
}

/// What a user may do with one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaseAccess {
    /// Its metadata (label, pseudonyms, exam list, assignments): the study's coordinator.
    Metadata,
    /// Its images, through a streaming session: an assigned grader or adjudicator.
    View,
}

/// The facts about a case that decide access to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacts {
    /// The case's study.
    pub study: Uuid,
    /// The capacities in which *this* user is assigned the case (empty if not assigned).
    pub assigned_as: Vec<AssignmentRole>,
}

impl Principal {
    /// Whether the user holds `role` globally.
    pub fn has_global(&self, role: Role) -> bool {
        self.grants
            .iter()
            .any(|grant| grant.role == role && grant.study.is_none())
    }

    /// Whether the user holds `role` in `study` (a global grant counts).
    pub fn has_in_study(&self, role: Role, study: Uuid) -> bool {
        self.grants
            .iter()
            .any(|grant| grant.role == role && grant.study.is_none_or(|s| s == study))
    }

    /// Whether the user may manage users and role grants.
    pub fn is_admin(&self) -> bool {
        self.has_global(Role::Admin)
    }

    /// Whether the user may read the audit log and statistics of every study.
    pub fn is_auditor(&self) -> bool {
        self.has_global(Role::Auditor)
    }

    /// Whether the user coordinates `study`: its cases, assignments, progress and exports.
    ///
    /// Blinding by construction: a user who grades in the study does not coordinate it, even
    /// with the grant (exports and assignments would show them the other graders' values of
    /// cases they still have to grade). The grant is refused when given
    /// ([`blinding_conflict`]); one that exists anyway (given before, or mapped from an identity
    /// provider's groups) gives nothing.
    pub fn coordinates(&self, study: Uuid) -> bool {
        self.has_in_study(Role::Coordinator, study) && !self.has_in_study(Role::Grader, study)
    }

    /// Whether the user may stream images at all (a grader or adjudicator somewhere): who gets
    /// credentials for the TURN relay.
    pub fn may_stream(&self) -> bool {
        self.grants
            .iter()
            .any(|grant| matches!(grant.role, Role::Grader | Role::Adjudicator))
    }

    /// The most the user may do with a case, or `None` (the case is then answered as absent).
    pub fn case_access(&self, case: &CaseFacts) -> Option<CaseAccess> {
        let views = case.assigned_as.iter().any(|role| {
            let needed = Role::from(*role);
            self.has_in_study(needed, case.study)
        });
        if views {
            Some(CaseAccess::View)
        } else if self.coordinates(case.study) {
            Some(CaseAccess::Metadata)
        } else {
            None
        }
    }

    /// Whether the user may see the study at all (listed in `GET /api/studies`).
    pub fn sees_study(&self, study: Uuid) -> bool {
        self.is_admin()
            || self.is_auditor()
            || self
                .grants
                .iter()
                .any(|grant| grant.study.is_none_or(|s| s == study))
    }
}

/// Whether granting `role` in `study` (`None`: every study) to a user who holds `grants` would
/// make them both a grader and a coordinator of one study: the grant that conflicts, if any.
/// A grader must stay blind to the other graders' values, which a coordinator sees.
pub fn blinding_conflict(grants: &[Grant], role: Role, study: Option<Uuid>) -> Option<Grant> {
    let other = match role {
        Role::Grader => Role::Coordinator,
        Role::Coordinator => Role::Grader,
        _ => return None,
    };
    let overlaps = |a: Option<Uuid>, b: Option<Uuid>| match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    grants
        .iter()
        .find(|grant| grant.role == other && overlaps(grant.study, study))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUDY: Uuid = Uuid::from_u128(1);
    const OTHER_STUDY: Uuid = Uuid::from_u128(2);

    fn principal(grants: &[(Role, Option<Uuid>)]) -> Principal {
        Principal {
            user_id: Uuid::from_u128(99),
            grants: grants
                .iter()
                .map(|&(role, study)| Grant { role, study })
                .collect(),
        }
    }

    fn case(assigned_as: &[AssignmentRole]) -> CaseFacts {
        CaseFacts {
            study: STUDY,
            assigned_as: assigned_as.to_vec(),
        }
    }

    #[test]
    fn graders_view_only_cases_assigned_to_them() {
        let grader = principal(&[(Role::Grader, Some(STUDY))]);
        assert_eq!(
            grader.case_access(&case(&[AssignmentRole::Grader])),
            Some(CaseAccess::View)
        );
        assert_eq!(grader.case_access(&case(&[])), None);
        // An adjudication assignment needs the adjudicator role.
        assert_eq!(
            grader.case_access(&case(&[AssignmentRole::Adjudicator])),
            None
        );
    }

    #[test]
    fn an_assignment_without_the_role_in_that_study_grants_nothing() {
        let elsewhere = principal(&[(Role::Grader, Some(OTHER_STUDY))]);
        assert_eq!(
            elsewhere.case_access(&case(&[AssignmentRole::Grader])),
            None
        );
        let global = principal(&[(Role::Grader, None)]);
        assert_eq!(
            global.case_access(&case(&[AssignmentRole::Grader])),
            Some(CaseAccess::View)
        );
    }

    #[test]
    fn a_grader_does_not_coordinate_the_study_they_grade() {
        let both = principal(&[
            (Role::Coordinator, Some(STUDY)),
            (Role::Grader, Some(STUDY)),
        ]);
        assert!(!both.coordinates(STUDY));
        assert_eq!(both.case_access(&case(&[])), None);
        let elsewhere = principal(&[
            (Role::Coordinator, Some(STUDY)),
            (Role::Grader, Some(OTHER_STUDY)),
        ]);
        assert!(elsewhere.coordinates(STUDY));
        let global_grader = principal(&[(Role::Coordinator, Some(STUDY)), (Role::Grader, None)]);
        assert!(!global_grader.coordinates(STUDY));

        let grants = |list: &[(Role, Option<Uuid>)]| principal(list).grants;
        let grader_here = grants(&[(Role::Grader, Some(STUDY))]);
        assert!(blinding_conflict(&grader_here, Role::Coordinator, Some(STUDY)).is_some());
        assert!(blinding_conflict(&grader_here, Role::Coordinator, None).is_some());
        assert!(blinding_conflict(&grader_here, Role::Coordinator, Some(OTHER_STUDY)).is_none());
        assert!(blinding_conflict(&grader_here, Role::Adjudicator, Some(STUDY)).is_none());
        let coordinator_everywhere = grants(&[(Role::Coordinator, None)]);
        assert!(blinding_conflict(&coordinator_everywhere, Role::Grader, Some(STUDY)).is_some());
    }

    #[test]
    fn coordinators_see_metadata_of_their_study_only() {
        let coordinator = principal(&[(Role::Coordinator, Some(STUDY))]);
        assert_eq!(
            coordinator.case_access(&case(&[])),
            Some(CaseAccess::Metadata)
        );
        assert!(coordinator.coordinates(STUDY));
        assert!(!coordinator.coordinates(OTHER_STUDY));
        let other = principal(&[(Role::Coordinator, Some(OTHER_STUDY))]);
        assert_eq!(other.case_access(&case(&[])), None);
    }

    #[test]
    fn admins_and_auditors_never_see_images() {
        for role in [Role::Admin, Role::Auditor] {
            let p = principal(&[(role, None)]);
            assert_eq!(p.case_access(&case(&[])), None, "{role}");
            assert!(p.sees_study(STUDY));
        }
        let admin = principal(&[(Role::Admin, None)]);
        assert!(admin.is_admin());
        assert!(!admin.is_auditor());
        // A study-scoped admin grant is not an admin.
        assert!(!principal(&[(Role::Admin, Some(STUDY))]).is_admin());
    }

    #[test]
    fn nobody_without_grants_sees_anything() {
        let nobody = principal(&[]);
        assert_eq!(nobody.case_access(&case(&[AssignmentRole::Grader])), None);
        assert!(!nobody.sees_study(STUDY));
        assert!(!nobody.is_admin());
    }
}
