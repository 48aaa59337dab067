//! Assignment planning (pure): which graders grade which case.
//!
//! [`plan`] gives every case `per_case` distinct available graders, counting assignments that
//! already exist. Each slot goes to the available grader with the least total load (cases open in
//! their worklist plus cases planned so far); among equally loaded graders it prefers the one who
//! has shared fewest cases with the case's other graders, so every grader pair ends up sharing
//! cases (pairwise kappa needs that); remaining ties are broken by a hash of the seed, case and
//! grader, so the same inputs always give the same plan. Optionally each grader gets a fraction of
//! their newly planned cases again as hidden repeats (intra-grader agreement), chosen with a
//! seeded splitmix64 generator and placed after all first-time assignments.
//!
//! [`reassign`] picks a replacement when a grader drops out of a case.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Largest allowed [`PlanOptions::repeat_fraction`].
pub const MAX_REPEAT_FRACTION: f64 = 0.5;

/// A case to plan for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRef {
    /// The case id.
    pub id: String,
    /// The (pseudonymous) subject the case belongs to; carried for the caller, planning does not
    /// depend on it.
    pub subject: String,
}

/// A grader and their current load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraderLoad {
    /// The grader's user id.
    pub id: String,
    /// Cases already open in their worklist (existing assignments are assumed to be included
    /// here, so they are not counted again).
    pub open: u32,
    /// Whether the grader can take new cases.
    pub available: bool,
}

/// How to plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanOptions {
    /// Distinct graders per case, existing assignments included (default 2).
    pub per_case: u32,
    /// Fraction (0.0–0.5) of each grader's newly planned cases they get again later as hidden
    /// repeats (default 0.0).
    pub repeat_fraction: f64,
    /// Seed for tie-breaking and repeat choice.
    pub seed: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            per_case: 2,
            repeat_fraction: 0.0,
            seed: 0,
        }
    }
}

/// One planned assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// The case id.
    pub case: String,
    /// The grader id.
    pub grader: String,
    /// A hidden repeat of a case this grader also grades first-time in this plan.
    pub repeat: bool,
}

/// The planned assignments: all first-time ones, in case order, then the hidden repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Assignments in the order they should be created.
    pub assignments: Vec<Planned>,
}

impl Plan {
    /// How many assignments (first-time and repeats) the plan gives `grader`.
    pub fn count_for(&self, grader: &str) -> usize {
        self.assignments
            .iter()
            .filter(|a| a.grader == grader)
            .count()
    }
}

/// Why no plan (or replacement) could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// `per_case` is 0.
    #[error("graders per case must be at least 1")]
    NoGradersPerCase,
    /// More graders per case than available graders.
    #[error("{per_case} graders per case requested but only {available} graders are available")]
    NotEnoughGraders {
        /// Requested graders per case.
        per_case: u32,
        /// Available graders.
        available: usize,
    },
    /// `repeat_fraction` is outside 0.0–0.5 (or not a number).
    #[error("repeat fraction must be between 0.0 and {MAX_REPEAT_FRACTION}, got {0}")]
    RepeatFraction(f64),
    /// A case id is listed twice.
    #[error("case {0} is listed twice")]
    DuplicateCase(String),
    /// A grader id is listed twice.
    #[error("grader {0} is listed twice")]
    DuplicateGrader(String),
    /// An assignment (or the grader to replace) names a grader not in the grader list.
    #[error("case {case}: grader {grader} is not in the grader list")]
    UnknownGrader {
        /// The case.
        case: String,
        /// The unknown grader id.
        grader: String,
    },
    /// The grader to replace is not assigned to the case.
    #[error("grader {grader} is not assigned to case {case}")]
    NotAssigned {
        /// The case.
        case: String,
        /// The grader.
        grader: String,
    },
    /// Every available grader is already on the case.
    #[error("no available grader is left for case {case}")]
    NoEligibleGrader {
        /// The case.
        case: String,
    },
}

/// Plans assignments so every case has `options.per_case` distinct available graders, counting
/// `existing` `(case id, grader id)` assignments (which are never duplicated). See the module
/// documentation for the balancing rules.
pub fn plan<C: AsRef<str>, G: AsRef<str>>(
    cases: &[CaseRef],
    graders: &[GraderLoad],
    existing: &[(C, G)],
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    check_options(options)?;
    let mut roster = Roster::new(graders)?;
    let available = roster.available_count();
    if options.per_case as usize > available {
        return Err(PlanError::NotEnoughGraders {
            per_case: options.per_case,
            available,
        });
    }
    check_unique_cases(cases)?;
    let mut on_case = roster.existing_by_case(existing)?;
    let mut assignments = Vec::new();
    let mut first_time: Vec<Vec<&str>> = vec![Vec::new(); roster.len()];
    for case in cases {
        let on = on_case.entry(case.id.as_str()).or_default();
        while on.len() < options.per_case as usize {
            let Some(g) = roster.pick(on, |g| tiebreak(options.seed, &case.id, roster.ids[g]))
            else {
                break;
            };
            roster.assign(g, on);
            on.push(g);
            first_time[g].push(&case.id);
            assignments.push(planned(&case.id, roster.ids[g], false));
        }
    }
    for (g, cases) in first_time.iter().enumerate() {
        let repeats = choose_repeats(cases, options.repeat_fraction, options.seed, roster.ids[g]);
        assignments.extend(repeats.into_iter().map(|c| planned(c, roster.ids[g], true)));
    }
    Ok(Plan { assignments })
}

/// Picks who takes over `case` from `from_grader`: the least loaded available grader not already
/// on the case (by `existing`), preferring the one who shared fewest cases with the case's other
/// graders, then the smallest id.
pub fn reassign<C: AsRef<str>, G: AsRef<str>>(
    case: &str,
    from_grader: &str,
    graders: &[GraderLoad],
    existing: &[(C, G)],
) -> Result<String, PlanError> {
    let mut roster = Roster::new(graders)?;
    let on_case = roster.existing_by_case(existing)?;
    let Some(&from) = roster.index.get(from_grader) else {
        return Err(PlanError::UnknownGrader {
            case: case.to_string(),
            grader: from_grader.to_string(),
        });
    };
    let on = on_case.get(case).map(Vec::as_slice).unwrap_or_default();
    if !on.contains(&from) {
        return Err(PlanError::NotAssigned {
            case: case.to_string(),
            grader: from_grader.to_string(),
        });
    }
    let others: Vec<usize> = on.iter().copied().filter(|&g| g != from).collect();
    roster
        .pick_excluding(on, &others, |_| 0)
        .map(|g| roster.ids[g].to_string())
        .ok_or_else(|| PlanError::NoEligibleGrader {
            case: case.to_string(),
        })
}

fn check_options(options: &PlanOptions) -> Result<(), PlanError> {
    if options.per_case == 0 {
        return Err(PlanError::NoGradersPerCase);
    }
    let fraction = options.repeat_fraction;
    if !(0.0..=MAX_REPEAT_FRACTION).contains(&fraction) {
        return Err(PlanError::RepeatFraction(fraction));
    }
    Ok(())
}

fn check_unique_cases(cases: &[CaseRef]) -> Result<(), PlanError> {
    let mut seen = HashSet::with_capacity(cases.len());
    match cases.iter().find(|c| !seen.insert(c.id.as_str())) {
        Some(dup) => Err(PlanError::DuplicateCase(dup.id.clone())),
        None => Ok(()),
    }
}

fn planned(case: &str, grader: &str, repeat: bool) -> Planned {
    Planned {
        case: case.to_string(),
        grader: grader.to_string(),
        repeat,
    }
}

/// Graders by index, their running load and how many cases each pair shares.
struct Roster<'a> {
    ids: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
    available: Vec<bool>,
    load: Vec<u64>,
    /// `shared[a * len + b]`: cases graders a and b both have (existing or planned).
    shared: Vec<u32>,
}

impl<'a> Roster<'a> {
    fn new(graders: &'a [GraderLoad]) -> Result<Roster<'a>, PlanError> {
        let mut index = HashMap::with_capacity(graders.len());
        for (i, g) in graders.iter().enumerate() {
            if index.insert(g.id.as_str(), i).is_some() {
                return Err(PlanError::DuplicateGrader(g.id.clone()));
            }
        }
        Ok(Roster {
            ids: graders.iter().map(|g| g.id.as_str()).collect(),
            index,
            available: graders.iter().map(|g| g.available).collect(),
            load: graders.iter().map(|g| u64::from(g.open)).collect(),
            shared: vec![0; graders.len() * graders.len()],
        })
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn available_count(&self) -> usize {
        self.available.iter().filter(|&&a| a).count()
    }

    /// Existing assignments as grader indices per case (deduplicated), counting shared cases.
    fn existing_by_case<'e, C: AsRef<str>, G: AsRef<str>>(
        &mut self,
        existing: &'e [(C, G)],
    ) -> Result<HashMap<&'e str, Vec<usize>>, PlanError> {
        let mut on_case: HashMap<&str, Vec<usize>> = HashMap::new();
        for (case, grader) in existing {
            let (case, grader) = (case.as_ref(), grader.as_ref());
            let Some(&g) = self.index.get(grader) else {
                return Err(PlanError::UnknownGrader {
                    case: case.to_string(),
                    grader: grader.to_string(),
                });
            };
            let on = on_case.entry(case).or_default();
            if !on.contains(&g) {
                self.share(g, on);
                on.push(g);
            }
        }
        Ok(on_case)
    }

    fn share(&mut self, g: usize, others: &[usize]) {
        let len = self.len();
        for &o in others {
            self.shared[g * len + o] += 1;
            self.shared[o * len + g] += 1;
        }
    }

    /// Gives `g` one more case that `others` already have.
    fn assign(&mut self, g: usize, others: &[usize]) {
        self.load[g] += 1;
        self.share(g, others);
    }

    /// Cases `g` shares with `others`, summed.
    fn shared_with(&self, g: usize, others: &[usize]) -> u64 {
        let len = self.len();
        others
            .iter()
            .map(|&o| u64::from(self.shared[g * len + o]))
            .sum()
    }

    /// The best available grader not in `on` for a case whose graders are `on`.
    fn pick(&self, on: &[usize], tiebreak: impl Fn(usize) -> u64) -> Option<usize> {
        self.pick_excluding(on, on, tiebreak)
    }

    /// The available grader not in `excluded` with the least load, then fewest cases shared
    /// with `others`, then the smallest `tiebreak`, then the smallest id.
    fn pick_excluding(
        &self,
        excluded: &[usize],
        others: &[usize],
        tiebreak: impl Fn(usize) -> u64,
    ) -> Option<usize> {
        (0..self.len())
            .filter(|g| self.available[*g] && !excluded.contains(g))
            .min_by_key(|&g| {
                (
                    self.load[g],
                    self.shared_with(g, others),
                    tiebreak(g),
                    self.ids[g],
                )
            })
    }
}

/// `round(fraction × cases)` of `cases`, chosen by a splitmix64 stream seeded from `seed` and
/// the grader (partial Fisher–Yates shuffle).
fn choose_repeats<'c>(cases: &[&'c str], fraction: f64, seed: u64, grader: &str) -> Vec<&'c str> {
    let count = ((fraction * cases.len() as f64).round() as usize).min(cases.len());
    let mut pool = cases.to_vec();
    let mut rng = SplitMix64(seed ^ fnv1a(grader));
    for i in 0..count {
        let remaining = (pool.len() - i) as u64;
        let j = i + (rng.next() % remaining) as usize;
        pool.swap(i, j);
    }
    pool.truncate(count);
    pool
}

/// Deterministic tie-break value of a grader for a case under a seed.
fn tiebreak(seed: u64, case: &str, grader: &str) -> u64 {
    splitmix64(splitmix64(seed ^ fnv1a(case)) ^ fnv1a(grader))
}

/// splitmix64 (Steele, Lea & Flood 2014) as a stream.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
}

/// One splitmix64 step from `x`.
fn splitmix64(x: u64) -> u64 {
    mix(x.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// The splitmix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a of a string (stable across platforms and Rust versions).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: &[(&str, &str)] = &[];

    fn cases(n: usize) -> Vec<CaseRef> {
        (0..n)
            .map(|i| CaseRef {
                id: format!("c{i}"),
                subject: format!("s{}", i / 2),
            })
            .collect()
    }

    fn graders(n: usize) -> Vec<GraderLoad> {
        (0..n)
            .map(|i| GraderLoad {
                id: format!("g{i}"),
                open: 0,
                available: true,
            })
            .collect()
    }

    fn options(per_case: u32, repeat_fraction: f64, seed: u64) -> PlanOptions {
        PlanOptions {
            per_case,
            repeat_fraction,
            seed,
        }
    }

    /// Grader ids per case, first-time assignments only.
    fn by_case(plan: &Plan) -> HashMap<&str, Vec<&str>> {
        let mut map: HashMap<&str, Vec<&str>> = HashMap::new();
        for a in plan.assignments.iter().filter(|a| !a.repeat) {
            map.entry(&a.case).or_default().push(&a.grader);
        }
        map
    }

    /// Cases shared by each unordered grader pair.
    fn pair_counts<'p>(
        groups: impl Iterator<Item = &'p Vec<&'p str>>,
    ) -> HashMap<(&'p str, &'p str), usize> {
        let mut pairs = HashMap::new();
        for group in groups {
            for (i, a) in group.iter().enumerate() {
                for b in &group[i + 1..] {
                    let key = if a < b { (*a, *b) } else { (*b, *a) };
                    *pairs.entry(key).or_default() += 1;
                }
            }
        }
        pairs
    }

    fn assert_distinct_graders(plan: &Plan, per_case: usize) {
        for (case, graders) in by_case(plan) {
            let unique: HashSet<_> = graders.iter().collect();
            assert_eq!(unique.len(), graders.len(), "{case}: {graders:?}");
            assert_eq!(graders.len(), per_case, "{case}");
        }
    }

    #[test]
    fn nine_cases_three_graders_two_per_case() {
        let plan = plan(&cases(9), &graders(3), NONE, &PlanOptions::default()).unwrap();
        assert_eq!(plan.assignments.len(), 18);
        assert_distinct_graders(&plan, 2);
        assert_eq!(by_case(&plan).len(), 9);
        for g in ["g0", "g1", "g2"] {
            assert_eq!(plan.count_for(g), 6, "{g}");
        }
        let by_case = by_case(&plan);
        let pairs = pair_counts(by_case.values());
        assert_eq!(pairs.len(), 3);
        assert!(pairs.values().all(|&n| n == 3), "{pairs:?}");
    }

    #[test]
    fn hundred_cases_seven_graders_balanced_and_every_pair_shares() {
        for seed in 0..20 {
            let plan = plan(&cases(100), &graders(7), NONE, &options(2, 0.0, seed)).unwrap();
            assert_distinct_graders(&plan, 2);
            let loads: Vec<usize> = (0..7).map(|g| plan.count_for(&format!("g{g}"))).collect();
            assert_eq!(loads.iter().sum::<usize>(), 200);
            let spread = loads.iter().max().unwrap() - loads.iter().min().unwrap();
            assert!(spread <= 1, "seed {seed}: {loads:?}");
            let by_case = by_case(&plan);
            let pairs = pair_counts(by_case.values());
            assert_eq!(pairs.len(), 21, "seed {seed}: {pairs:?}");
        }
    }

    #[test]
    fn three_per_case_are_distinct() {
        let plan = plan(&cases(20), &graders(5), NONE, &options(3, 0.0, 4)).unwrap();
        assert_distinct_graders(&plan, 3);
        assert_eq!(plan.assignments.len(), 60);
    }

    #[test]
    fn existing_assignments_count_and_are_not_duplicated() {
        let existing = [
            ("c0", "g0"),
            ("c0", "g0"), // listed twice: one assignment
            ("c1", "g1"),
            ("c1", "g2"),
            ("c2", "g3"), // g3 is unavailable but the assignment still counts
            ("other", "g1"),
        ];
        let mut roster = graders(4);
        roster[3].available = false;
        let plan = plan(&cases(3), &roster, &existing, &PlanOptions::default()).unwrap();
        let by_case = by_case(&plan);
        assert_eq!(by_case["c0"].len(), 1);
        assert_ne!(by_case["c0"][0], "g0");
        assert!(!by_case.contains_key("c1"));
        assert_eq!(by_case["c2"].len(), 1);
        assert_ne!(by_case["c2"][0], "g3");
        assert_eq!(plan.assignments.len(), 2);
    }

    #[test]
    fn open_work_counts_toward_load() {
        let mut roster = graders(3);
        roster[0].open = 10;
        let plan = plan(&cases(6), &roster, NONE, &PlanOptions::default()).unwrap();
        assert_eq!(plan.count_for("g0"), 0);
        assert_eq!(plan.count_for("g1"), 6);
        assert_eq!(plan.count_for("g2"), 6);
    }

    #[test]
    fn unavailable_grader_gets_nothing() {
        let mut roster = graders(4);
        roster[2].available = false;
        let plan = plan(&cases(30), &roster, NONE, &options(2, 0.3, 9)).unwrap();
        assert_eq!(plan.count_for("g2"), 0);
        assert_distinct_graders(&plan, 2);
        assert_eq!(plan.assignments.iter().filter(|a| !a.repeat).count(), 60);
    }

    #[test]
    fn same_inputs_same_plan_and_the_seed_matters() {
        let run = |seed| plan(&cases(40), &graders(6), NONE, &options(2, 0.25, seed)).unwrap();
        assert_eq!(run(7), run(7));
        assert!((0..10).any(|seed| run(seed) != run(7)));
    }

    #[test]
    fn repeats_are_counted_flagged_and_placed_after_first_time_work() {
        let plan = plan(&cases(9), &graders(3), NONE, &options(2, 0.5, 1)).unwrap();
        // 6 first-time cases each → round(0.5 × 6) = 3 repeats each.
        assert_eq!(plan.assignments.len(), 18 + 9);
        for g in ["g0", "g1", "g2"] {
            let mine: Vec<(usize, &Planned)> = plan
                .assignments
                .iter()
                .enumerate()
                .filter(|(_, a)| a.grader == g)
                .collect();
            let firsts: Vec<_> = mine.iter().filter(|(_, a)| !a.repeat).collect();
            let repeats: Vec<_> = mine.iter().filter(|(_, a)| a.repeat).collect();
            assert_eq!((firsts.len(), repeats.len()), (6, 3), "{g}");
            let last_first = firsts.iter().map(|(i, _)| *i).max().unwrap();
            let first_cases: HashSet<&str> = firsts.iter().map(|(_, a)| a.case.as_str()).collect();
            let repeat_cases: HashSet<&str> =
                repeats.iter().map(|(_, a)| a.case.as_str()).collect();
            assert_eq!(repeat_cases.len(), 3, "{g}: repeats are distinct cases");
            for (i, a) in &repeats {
                assert!(*i > last_first);
                assert!(first_cases.contains(a.case.as_str()));
            }
        }
    }

    #[test]
    fn repeat_count_rounds_the_fraction() {
        // 6 first-time cases each: 0.2 × 6 = 1.2 → 1; 0.25 × 6 = 1.5 → 2; 0.0 → none.
        for (fraction, each) in [(0.0, 0), (0.2, 1), (0.25, 2)] {
            let plan = plan(&cases(9), &graders(3), NONE, &options(2, fraction, 5)).unwrap();
            for g in ["g0", "g1", "g2"] {
                let repeats = plan
                    .assignments
                    .iter()
                    .filter(|a| a.repeat && a.grader == g)
                    .count();
                assert_eq!(repeats, each, "{fraction} {g}");
            }
        }
    }

    #[test]
    fn repeats_only_come_from_newly_planned_cases() {
        let existing = [("c0", "g0"), ("c0", "g1")];
        let plan = plan(&cases(3), &graders(2), &existing, &options(2, 0.5, 3)).unwrap();
        assert!(plan.assignments.iter().all(|a| a.case != "c0"));
        // Each grader planned on c1 and c2: round(0.5 × 2) = 1 repeat each.
        assert_eq!(plan.assignments.iter().filter(|a| a.repeat).count(), 2);
    }

    #[test]
    fn no_cases_is_an_empty_plan() {
        let plan = plan(&[], &graders(2), NONE, &options(2, 0.5, 0)).unwrap();
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn errors_are_reported() {
        let two = graders(2);
        let err = |cases: &[CaseRef], graders: &[GraderLoad], existing: &[(&str, &str)], o| {
            plan(cases, graders, existing, &o).unwrap_err()
        };
        assert_eq!(
            err(&cases(1), &two, NONE, options(0, 0.0, 0)),
            PlanError::NoGradersPerCase
        );
        assert_eq!(
            err(&cases(1), &two, NONE, options(3, 0.0, 0)),
            PlanError::NotEnoughGraders {
                per_case: 3,
                available: 2
            }
        );
        let mut one_off = graders(2);
        one_off[1].available = false;
        assert_eq!(
            err(&cases(1), &one_off, NONE, options(2, 0.0, 0)),
            PlanError::NotEnoughGraders {
                per_case: 2,
                available: 1
            }
        );
        for fraction in [-0.1, 0.51, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                err(&cases(1), &two, NONE, options(2, fraction, 0)),
                PlanError::RepeatFraction(_)
            ));
        }
        let mut dup = cases(2);
        dup[1].id = "c0".into();
        assert_eq!(
            err(&dup, &two, NONE, options(2, 0.0, 0)),
            PlanError::DuplicateCase("c0".into())
        );
        let mut dup_graders = graders(3);
        dup_graders[2].id = "g0".into();
        assert_eq!(
            err(&cases(1), &dup_graders, NONE, options(2, 0.0, 0)),
            PlanError::DuplicateGrader("g0".into())
        );
        assert_eq!(
            err(&cases(1), &two, &[("c0", "ghost")], options(2, 0.0, 0)),
            PlanError::UnknownGrader {
                case: "c0".into(),
                grader: "ghost".into()
            }
        );
        let message = PlanError::NotEnoughGraders {
            per_case: 3,
            available: 2,
        }
        .to_string();
        assert_eq!(
            message,
            "3 graders per case requested but only 2 graders are available"
        );
    }

    #[test]
    fn reassign_picks_the_least_loaded_grader_not_on_the_case() {
        let mut roster = graders(5);
        roster[0].open = 1; // leaving
        roster[1].open = 0; // stays on the case
        roster[2].open = 5;
        roster[3].open = 2;
        roster[4].open = 2;
        roster[4].available = true;
        let existing = [("c1", "g0"), ("c1", "g1"), ("c2", "g1"), ("c2", "g4")];
        // g3 and g4 tie on load; g4 already shares c2 with g1, so g3 spreads pairs better.
        assert_eq!(reassign("c1", "g0", &roster, &existing), Ok("g3".into()));
        roster[3].available = false;
        assert_eq!(reassign("c1", "g0", &roster, &existing), Ok("g4".into()));
    }

    #[test]
    fn reassign_errors() {
        let roster = graders(2);
        let existing = [("c1", "g0"), ("c1", "g1")];
        assert_eq!(
            reassign("c1", "g0", &roster, &existing),
            Err(PlanError::NoEligibleGrader { case: "c1".into() })
        );
        assert_eq!(
            reassign("c2", "g0", &roster, &existing),
            Err(PlanError::NotAssigned {
                case: "c2".into(),
                grader: "g0".into()
            })
        );
        assert_eq!(
            reassign("c1", "ghost", &roster, &existing),
            Err(PlanError::UnknownGrader {
                case: "c1".into(),
                grader: "ghost".into()
            })
        );
        assert!(matches!(
            reassign("c1", "g0", &roster, &[("c1", "g0"), ("c1", "nobody")]),
            Err(PlanError::UnknownGrader { .. })
        ));
    }

    #[test]
    fn options_default_and_deserialize_with_defaults() {
        assert_eq!(PlanOptions::default(), options(2, 0.0, 0));
        let parsed: PlanOptions = serde_json::from_str(r#"{"seed": 9}"#).unwrap();
        assert_eq!(parsed, options(2, 0.0, 9));
    }

    #[test]
    fn splitmix64_matches_the_reference_stream() {
        // First outputs of splitmix64 seeded with 0 (reference C implementation by Vigna).
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next(), 0x6E78_9E6A_A1B9_65F4);
    }
}
