//! Agreement statistics (pure): Cohen's kappa and weighted kappa between two graders, per field
//! and per grader pair, plus intra-grader agreement from hidden repeats.
//!
//! A [`Table`] is the k×k contingency table of two ratings over an ordered list of categories
//! (ordinal scales in scale order: the weighted kappas use the category positions). [`kappa`]
//! computes Cohen's kappa (1960) or Cohen's weighted kappa (1968) with linear
//! (Cicchetti–Allison) or quadratic (Fleiss–Cohen) agreement weights, its asymptotic standard
//! error and a 95% confidence interval. [`pairwise`] and [`intra`] turn flat lists of
//! [`Rating`]s into one result per grader pair (or grader) and item with one sort and hash-map
//! look-ups (no loops over pairs of ratings), so a study of thousands of cases aggregates in
//! milliseconds.
//!
//! Nothing here returns NaN: an empty table, or one where chance agreement is already perfect
//! (both graders used one and the same category for every case), has no kappa and yields `None`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// The standard normal quantile for a two-sided 95% interval.
const Z_95: f64 = 1.959_963_984_540_054;
/// Largest scale [`pairwise`] and [`intra`] accept; items with more categories are left out.
pub const MAX_CATEGORIES: usize = 256;
/// `1 − expected` at or below this is treated as "chance agreement is perfect" (kappa undefined).
const DEGENERATE: f64 = 1e-12;

/// How partial agreement between different categories is credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// Cohen's kappa: only identical categories agree (nominal scales).
    Unweighted,
    /// Linear weights `1 − |i − j| / (k − 1)` (Cicchetti & Allison 1971; SAS's default).
    Linear,
    /// Quadratic weights `1 − (i − j)² / (k − 1)²` (Fleiss & Cohen 1973).
    Quadratic,
}

impl Weights {
    /// The agreement weight of categories `i` and `j` on a scale of `k` categories, in `0..=1`
    /// (1 on the diagonal). A one-category scale has the single weight 1.
    pub fn agreement(self, i: usize, j: usize, k: usize) -> f64 {
        if i == j {
            return 1.0;
        }
        if k < 2 {
            return 0.0;
        }
        let distance = i.abs_diff(j) as f64 / (k - 1) as f64;
        match self {
            Weights::Unweighted => 0.0,
            Weights::Linear => 1.0 - distance,
            Weights::Quadratic => 1.0 - distance * distance,
        }
    }
}

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    /// A category index is not below the number of categories.
    #[error("category index {index} is out of range for {categories} categories")]
    CategoryOutOfRange {
        /// The offending index.
        index: usize,
        /// How many categories the table has.
        categories: usize,
    },
    /// A label is not one of the table's categories.
    #[error("unknown category label {0:?}")]
    UnknownLabel(String),
    /// Two categories have the same label.
    #[error("category label {0:?} appears twice")]
    DuplicateLabel(String),
    /// `from_counts` got a number of cells other than k×k.
    #[error("expected {expected} cells (k×k), got {got}")]
    WrongCellCount {
        /// k×k.
        expected: usize,
        /// Cells given.
        got: usize,
    },
}

/// A k×k contingency table: rows are the first rating, columns the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    categories: Vec<String>,
    /// Row-major, `k * k` cells.
    counts: Vec<u64>,
}

impl Table {
    /// An empty table over `categories` (ordinal scales in scale order).
    pub fn new(categories: Vec<String>) -> Table {
        let k = categories.len();
        Table {
            categories,
            counts: vec![0; k.saturating_mul(k)],
        }
    }

    /// An empty table over `k` categories labelled `"0"`, `"1"`, … (callers bound `k`).
    fn with_size(k: usize) -> Table {
        Table::new((0..k).map(|i| i.to_string()).collect())
    }

    /// A table from pairs of category indices `(first rating, second rating)`.
    pub fn from_pairs(
        categories: Vec<String>,
        pairs: impl IntoIterator<Item = (usize, usize)>,
    ) -> Result<Table, AgreementError> {
        let mut table = Table::new(categories);
        for (a, b) in pairs {
            table.add(a, b)?;
        }
        Ok(table)
    }

    /// A table from pairs of category labels, e.g. `("R1", "R2")`.
    pub fn from_labelled<A: AsRef<str>, B: AsRef<str>>(
        categories: Vec<String>,
        pairs: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Table, AgreementError> {
        let mut index = HashMap::with_capacity(categories.len());
        for (i, label) in categories.iter().enumerate() {
            if index.insert(label.clone(), i).is_some() {
                return Err(AgreementError::DuplicateLabel(label.clone()));
            }
        }
        let lookup = |label: &str| {
            index
                .get(label)
                .copied()
                .ok_or_else(|| AgreementError::UnknownLabel(label.to_string()))
        };
        let mut indexed = Vec::new();
        for (a, b) in pairs {
            indexed.push((lookup(a.as_ref())?, lookup(b.as_ref())?));
        }
        Table::from_pairs(categories, indexed)
    }

    /// A table over `k` categories labelled `"0"`, `"1"`, … from row-major cell counts.
    pub fn from_counts(k: usize, counts: &[u64]) -> Result<Table, AgreementError> {
        let expected = k.saturating_mul(k);
        if counts.len() != expected {
            return Err(AgreementError::WrongCellCount {
                expected,
                got: counts.len(),
            });
        }
        let mut table = Table::with_size(k);
        table.counts.copy_from_slice(counts);
        Ok(table)
    }

    /// Counts one more case rated `a` first and `b` second.
    pub fn add(&mut self, a: usize, b: usize) -> Result<(), AgreementError> {
        let k = self.k();
        for index in [a, b] {
            if index >= k {
                return Err(AgreementError::CategoryOutOfRange {
                    index,
                    categories: k,
                });
            }
        }
        let cell = &mut self.counts[a * k + b];
        *cell = cell.saturating_add(1);
        Ok(())
    }

    /// The category labels, in order.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// The number of categories.
    pub fn k(&self) -> usize {
        self.categories.len()
    }

    /// The number of rated cases (all cells).
    pub fn n(&self) -> u64 {
        self.counts.iter().fold(0, |sum, &c| sum.saturating_add(c))
    }

    /// The count of cell (`a`, `b`); 0 outside the table.
    pub fn count(&self, a: usize, b: usize) -> u64 {
        let k = self.k();
        if a < k && b < k {
            self.counts[a * k + b]
        } else {
            0
        }
    }

    /// The same table with the two ratings swapped.
    pub fn transposed(&self) -> Table {
        let k = self.k();
        let mut table = Table::new(self.categories.clone());
        for a in 0..k {
            for b in 0..k {
                table.counts[b * k + a] = self.counts[a * k + b];
            }
        }
        table
    }

    /// Cell proportions (row-major), row marginals and column marginals; `None` when empty.
    fn proportions(&self) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let n = self.n();
        if n == 0 {
            return None;
        }
        let k = self.k();
        let p: Vec<f64> = self.counts.iter().map(|&c| c as f64 / n as f64).collect();
        let rows = (0..k).map(|i| (0..k).map(|j| p[i * k + j]).sum()).collect();
        let cols = (0..k).map(|j| (0..k).map(|i| p[i * k + j]).sum()).collect();
        Some((p, rows, cols))
    }
}

/// Kappa of one table, with its sampling uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KappaResult {
    /// Cohen's (weighted) kappa, `(observed − expected) / (1 − expected)`, at most 1.
    pub kappa: f64,
    /// Observed (weighted) agreement, `Σ wᵢⱼ pᵢⱼ`, in `0..=1`.
    pub observed: f64,
    /// Agreement expected by chance from the marginals, `Σ wᵢⱼ pᵢ. p.ⱼ`, in `0..=1`.
    pub expected: f64,
    /// Number of cases in the table.
    pub n: u64,
    /// Large-sample standard error of kappa *not* assuming kappa = 0 (Fleiss, Cohen & Everitt
    /// 1969, the "ASE" SAS PROC FREQ reports); this is what [`KappaResult::ci95`] uses.
    pub std_error: Option<f64>,
    /// Large-sample standard error under the null hypothesis kappa = 0 (Fleiss, Cohen & Everitt
    /// 1969); `kappa / std_error_null` is the z statistic of R irr's `kappa2`.
    pub std_error_null: Option<f64>,
    /// Wald 95% interval `kappa ± 1.96 · std_error`, clipped to `[-1, 1]`.
    pub ci95: Option<(f64, f64)>,
}

/// Cohen's kappa (or weighted kappa) of `table`.
///
/// `None` when the table is empty, or when chance agreement is already perfect (expected = 1:
/// both graders put every case in one and the same category). Kappa is 0/0 there; reporting 1.0
/// would claim agreement beyond chance the data cannot show, so the caller reports the percent
/// agreement (100%) and "kappa undefined" instead.
pub fn kappa(table: &Table, weights: Weights) -> Option<KappaResult> {
    let (p, rows, cols) = table.proportions()?;
    let k = table.k();
    let w = |i: usize, j: usize| weights.agreement(i, j, k);
    let cells = || (0..k).flat_map(|i| (0..k).map(move |j| (i, j)));
    let observed: f64 = cells().map(|(i, j)| w(i, j) * p[i * k + j]).sum();
    let expected: f64 = cells().map(|(i, j)| w(i, j) * rows[i] * cols[j]).sum();
    if 1.0 - expected <= DEGENERATE {
        return None;
    }
    let kappa = (observed - expected) / (1.0 - expected);
    // Mean weight of row category i against the second rater's marginals, and of column j
    // against the first rater's (w̄ᵢ. and w̄.ⱼ in Fleiss, Cohen & Everitt 1969).
    let row_w: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| cols[j] * w(i, j)).sum())
        .collect();
    let col_w: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| rows[i] * w(i, j)).sum())
        .collect();
    let n = table.n() as f64;
    let spread: f64 = cells()
        .map(|(i, j)| {
            let term = w(i, j) * (1.0 - expected) - (row_w[i] + col_w[j]) * (1.0 - observed);
            p[i * k + j] * term * term
        })
        .sum();
    let correction = observed * expected - 2.0 * expected + observed;
    let variance = (spread - correction * correction) / (n * (1.0 - expected).powi(4));
    let spread_null: f64 = cells()
        .map(|(i, j)| {
            let term = w(i, j) - (row_w[i] + col_w[j]);
            rows[i] * cols[j] * term * term
        })
        .sum();
    let variance_null = (spread_null - expected * expected) / (n * (1.0 - expected).powi(2));
    let se = std_error(variance);
    Some(KappaResult {
        kappa,
        observed,
        expected,
        n: table.n(),
        std_error: se,
        std_error_null: std_error(variance_null),
        ci95: se.map(|se| ((kappa - Z_95 * se).max(-1.0), (kappa + Z_95 * se).min(1.0))),
    })
}

/// Fewest cases a study statistic reports a kappa for. Below it, kappa and its large-sample
/// interval mean nothing (one case graded 1 against 3 gives κ = 0 with the "interval" 0 – 0), so
/// the statistics report n and the percent agreement, and kappa as undefined.
pub const MIN_KAPPA_N: u64 = 10;

/// A kappa as a study reports it: `None` (undefined) below [`MIN_KAPPA_N`] cases, and whenever
/// [`kappa`] is undefined (expected agreement 1).
pub fn reportable(result: Option<KappaResult>) -> Option<KappaResult> {
    result.filter(|k| k.n >= MIN_KAPPA_N)
}

/// `√variance`, treating rounding noise below zero as zero; `None` if not finite.
fn std_error(variance: f64) -> Option<f64> {
    variance.is_finite().then(|| variance.max(0.0).sqrt())
}

/// Percent of cases with identical categories (0–100); `None` for an empty table.
pub fn percent_agreement(table: &Table) -> Option<f64> {
    let n = table.n();
    if n == 0 {
        return None;
    }
    let diagonal = (0..table.k()).fold(0u64, |sum, i| sum.saturating_add(table.count(i, i)));
    Some(100.0 * diagonal as f64 / n as f64)
}

/// The Landis & Koch (1977) band of a kappa value: "poor" (< 0), "slight" (0–0.20), "fair"
/// (0.21–0.40), "moderate" (0.41–0.60), "substantial" (0.61–0.80), "almost perfect"
/// (0.81–1.00). Values between bands (e.g. 0.205) go to the higher band; NaN is "undefined".
pub fn interpret(kappa: f64) -> &'static str {
    match kappa {
        k if k.is_nan() => "undefined",
        k if k < 0.0 => "poor",
        k if k <= 0.20 => "slight",
        k if k <= 0.40 => "fair",
        k if k <= 0.60 => "moderate",
        k if k <= 0.80 => "substantial",
        _ => "almost perfect",
    }
}

/// One grade of one item of one case by one grader, as a category index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rating<'a> {
    /// The case id.
    pub case: &'a str,
    /// The grader id.
    pub grader: &'a str,
    /// What was graded, e.g. `"dr_grade:OD"` (field and eye).
    pub item: &'a str,
    /// Index of the chosen category on the item's scale (ordinal scales in scale order).
    pub value: usize,
}

/// Agreement of one grader pair on one item, over the cases both graded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairAgreement {
    /// The grader whose grades are the table's rows (the smaller id).
    pub grader_a: String,
    /// The grader whose grades are the table's columns (the larger id).
    pub grader_b: String,
    /// The item.
    pub item: String,
    /// Weighting used for `kappa`.
    pub weights: Weights,
    /// Cases both graders graded.
    pub n: u64,
    /// Percent of those cases with identical grades (0–100); `None` when `n` is 0.
    pub percent_agreement: Option<f64>,
    /// Kappa; `None` when undefined (see [`kappa`]).
    pub kappa: Option<KappaResult>,
}

/// Agreement of one grader with themself on one item: first grade against hidden repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntraAgreement {
    /// The grader.
    pub grader: String,
    /// The item.
    pub item: String,
    /// Weighting used for `kappa`.
    pub weights: Weights,
    /// Cases graded twice.
    pub n: u64,
    /// Percent of those cases graded identically both times (0–100); `None` when `n` is 0.
    pub percent_agreement: Option<f64>,
    /// Kappa (rows: first grade, columns: repeat); `None` when undefined (see [`kappa`]).
    pub kappa: Option<KappaResult>,
}

/// Inter-grader agreement for every grader pair and item, every item on a scale of `categories`
/// categories. See [`pairwise_by`].
pub fn pairwise(ratings: &[Rating<'_>], categories: usize, weights: Weights) -> Vec<PairAgreement> {
    pairwise_by(ratings, |_| Some((categories, weights)))
}

/// Inter-grader agreement for every grader pair (a < b by id) and item, pairing the cases both
/// graders rated. `scale(item)` gives the item's number of categories and weighting; items it
/// returns `None` for (or more than [`MAX_CATEGORIES`] categories) are left out, as are ratings
/// whose value is not below the category count (grading validation rejects those upstream). If
/// a grader rated the same case and item more than once, the first rating counts. Cases graded by three or more graders feed every pair.
/// Results are sorted by item, then grader pair. Costs one sort of the ratings plus hash-map
/// look-ups: no loop over pairs of ratings.
pub fn pairwise_by(
    ratings: &[Rating<'_>],
    scale: impl Fn(&str) -> Option<(usize, Weights)>,
) -> Vec<PairAgreement> {
    let (mut items, mut cases, mut graders) = (
        Interner::default(),
        Interner::default(),
        Interner::default(),
    );
    let mut scales: Vec<Option<(usize, Weights)>> = Vec::new();
    // (item, case, grader, position, value), sorted so each case's grades of an item are
    // adjacent and a grader's first grade comes first.
    let mut rows = Vec::with_capacity(ratings.len());
    for (position, rating) in ratings.iter().enumerate() {
        let item = items.id(rating.item);
        if item == scales.len() {
            scales.push(scale(rating.item).filter(|&(k, _)| k <= MAX_CATEGORIES));
        }
        if scales[item].is_some_and(|(k, _)| rating.value < k) {
            let case = cases.id(rating.case);
            rows.push((
                item,
                case,
                graders.id(rating.grader),
                position,
                rating.value,
            ));
        }
    }
    rows.sort_unstable();
    let rank = graders.ranks();
    let mut tables: FastMap<(usize, usize, usize), Table> = FastMap::default();
    let mut group: Vec<(usize, usize)> = Vec::new();
    for case_rows in rows.chunk_by(|x, y| (x.0, x.1) == (y.0, y.1)) {
        let item = case_rows[0].0;
        let Some((k, _)) = scales[item] else {
            continue;
        };
        group.clear();
        for grader_rows in case_rows.chunk_by(|x, y| x.2 == y.2) {
            group.push((rank[grader_rows[0].2], grader_rows[0].4));
        }
        group.sort_unstable();
        for (x, &(a, va)) in group.iter().enumerate() {
            for &(b, vb) in &group[x + 1..] {
                let table = tables
                    .entry((item, a, b))
                    .or_insert_with(|| Table::with_size(k));
                // Values were checked against k above.
                let _ = table.add(va, vb);
            }
        }
    }
    let by_rank = graders.sorted_names();
    let mut out: Vec<PairAgreement> = tables
        .into_iter()
        .filter_map(|((item, a, b), table)| {
            let (_, weights) = scales[item]?;
            let item = items.names[item];
            Some(PairAgreement {
                grader_a: by_rank[a].to_string(),
                grader_b: by_rank[b].to_string(),
                item: item.to_string(),
                weights,
                n: table.n(),
                percent_agreement: percent_agreement(&table),
                kappa: kappa(&table, weights),
            })
        })
        .collect();
    out.sort_by(|x, y| {
        (&x.item, &x.grader_a, &x.grader_b).cmp(&(&y.item, &y.grader_a, &y.grader_b))
    });
    out
}

/// Intra-grader agreement for every grader and item, every item on a scale of `categories`
/// categories. See [`intra_by`].
pub fn intra(
    first: &[Rating<'_>],
    repeat: &[Rating<'_>],
    categories: usize,
    weights: Weights,
) -> Vec<IntraAgreement> {
    intra_by(first, repeat, |_| Some((categories, weights)))
}

/// Intra-grader agreement: pairs each grader's first grade of a case and item (from `first`)
/// with their repeat grade of the same case and item (from `repeat`). Items `scale` returns
/// `None` for (or more than [`MAX_CATEGORIES`] categories), out-of-range values and repeats
/// without a first grade are left out; duplicates count once (the first). Results are sorted
/// by item, then grader.
pub fn intra_by(
    first: &[Rating<'_>],
    repeat: &[Rating<'_>],
    scale: impl Fn(&str) -> Option<(usize, Weights)>,
) -> Vec<IntraAgreement> {
    let scales = Scales::new(scale);
    let mut firsts: FastMap<(&str, &str, &str), usize> = FastMap::default();
    for rating in first {
        if scales.valid(rating).is_some() {
            firsts
                .entry((rating.grader, rating.item, rating.case))
                .or_insert(rating.value);
        }
    }
    let mut tables: FastMap<(&str, &str), Table> = FastMap::default();
    for rating in repeat {
        let Some((k, _)) = scales.valid(rating) else {
            continue;
        };
        // Removing the first grade makes a second repeat of the same case count nothing.
        let Some(value) = firsts.remove(&(rating.grader, rating.item, rating.case)) else {
            continue;
        };
        let table = tables
            .entry((rating.grader, rating.item))
            .or_insert_with(|| Table::with_size(k));
        let _ = table.add(value, rating.value);
    }
    let mut out: Vec<IntraAgreement> = tables
        .into_iter()
        .filter_map(|((grader, item), table)| {
            let (_, weights) = scales.get(item)?;
            Some(IntraAgreement {
                grader: grader.to_string(),
                item: item.to_string(),
                weights,
                n: table.n(),
                percent_agreement: percent_agreement(&table),
                kappa: kappa(&table, weights),
            })
        })
        .collect();
    out.sort_by(|x, y| (&x.item, &x.grader).cmp(&(&y.item, &y.grader)));
    out
}

/// The caller's `scale` function, asked once per item.
struct Scales<'a, F> {
    scale: F,
    cache: std::cell::RefCell<FastMap<&'a str, Option<(usize, Weights)>>>,
}

impl<'a, F: Fn(&str) -> Option<(usize, Weights)>> Scales<'a, F> {
    fn new(scale: F) -> Self {
        Scales {
            scale,
            cache: Default::default(),
        }
    }

    fn get(&self, item: &'a str) -> Option<(usize, Weights)> {
        *self
            .cache
            .borrow_mut()
            .entry(item)
            .or_insert_with(|| (self.scale)(item).filter(|&(k, _)| k <= MAX_CATEGORIES))
    }

    /// The rating's scale if its item has one and its value is on it.
    fn valid(&self, rating: &Rating<'a>) -> Option<(usize, Weights)> {
        self.get(rating.item).filter(|&(k, _)| rating.value < k)
    }
}

/// Dense ids for strings, in order of first appearance.
#[derive(Default)]
struct Interner<'a> {
    index: FastMap<&'a str, usize>,
    names: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, name: &'a str) -> usize {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        self.names.push(name);
        self.index.insert(name, self.names.len() - 1);
        self.names.len() - 1
    }

    /// The names in sorted order.
    fn sorted_names(&self) -> Vec<&'a str> {
        let mut names = self.names.clone();
        names.sort_unstable();
        names
    }

    /// For each id, its name's position in sorted order.
    fn ranks(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = (0..self.names.len()).collect();
        ids.sort_unstable_by_key(|&id| self.names[id]);
        let mut rank = vec![0; ids.len()];
        for (position, id) in ids.into_iter().enumerate() {
            rank[id] = position;
        }
        rank
    }
}

/// Hash maps keyed by ids from the study's own records (not attacker-chosen input), so the fast
/// FNV-1a hash replaces the default SipHash.
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv1a>>;

/// 64-bit FNV-1a.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xCBF2_9CE4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            close(actual, expected, tolerance),
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    fn table(k: usize, counts: &[u64]) -> Table {
        Table::from_counts(k, counts).unwrap()
    }

    /// Labels 0..k, like Table::with_size.
    fn labels(k: usize) -> Vec<String> {
        (0..k).map(|i| i.to_string()).collect()
    }

    /// A table from two parallel label vectors (as scikit-learn's tests build theirs).
    fn from_vectors(k: usize, y1: &[usize], y2: &[usize]) -> Table {
        Table::from_pairs(labels(k), y1.iter().copied().zip(y2.iter().copied())).unwrap()
    }

    fn repeated(runs: &[(usize, usize)]) -> Vec<usize> {
        runs.iter()
            .flat_map(|&(value, times)| std::iter::repeat_n(value, times))
            .collect()
    }

    // Source: Wikipedia, "Cohen's kappa", section "Simple example": 50 grant proposals read by
    // A and B; both yes 20, A yes / B no 5, A no / B yes 10, both no 15; p_o = 0.7, p_e = 0.5,
    // κ = 0.4. (Confirmed against reproductions of the example at
    // calculatorlib.com/cohens-kappa-calculator, which shows p_o 70%, p_e 50%, κ 0.4.)
    #[test]
    fn wikipedia_simple_example_is_0_4() {
        let t = Table::from_labelled(
            vec!["yes".into(), "no".into()],
            std::iter::empty()
                .chain(std::iter::repeat_n(("yes", "yes"), 20))
                .chain(std::iter::repeat_n(("yes", "no"), 5))
                .chain(std::iter::repeat_n(("no", "yes"), 10))
                .chain(std::iter::repeat_n(("no", "no"), 15)),
        )
        .unwrap();
        let r = kappa(&t, Weights::Unweighted).unwrap();
        assert_eq!(r.n, 50);
        assert_close(r.observed, 0.7, 1e-12);
        assert_close(r.expected, 0.5, 1e-12);
        assert_close(r.kappa, 0.4, 1e-12);
        assert_eq!(percent_agreement(&t), Some(70.0));
        assert_eq!(interpret(r.kappa), "fair");
    }

    // Source: scikit-learn, sklearn/metrics/tests/test_classification.py, test_cohen_kappa:
    // "contingency matrix from Artstein and Poesio (2008), Table 1: [[20, 20], [10, 50]]"
    // → κ = 0.348 (3 decimals), and the same in either rater order; "Multiclass example:
    // Artstein and Poesio, Table 4" y1 = [0]*46+[1]*44+[2]*10, y2 = [0]*52+[1]*32+[2]*16
    // → κ = 0.8013 (4 decimals). Independent recomputation (plain python3 from the textbook
    // formula): 0.34782608..., 0.80132450....
    #[test]
    fn artstein_poesio_examples_from_scikit_learn() {
        let t = table(2, &[20, 20, 10, 50]);
        let r = kappa(&t, Weights::Unweighted).unwrap();
        assert_close(r.kappa, 0.348, 5e-4);
        assert_eq!(
            r.kappa,
            kappa(&t.transposed(), Weights::Unweighted).unwrap().kappa
        );

        let y1 = repeated(&[(0, 46), (1, 44), (2, 10)]);
        let y2 = repeated(&[(0, 52), (1, 32), (2, 16)]);
        let r = kappa(&from_vectors(3, &y1, &y2), Weights::Unweighted).unwrap();
        assert_close(r.kappa, 0.8013, 5e-5);
    }

    // Source: scikit-learn, sklearn/metrics/tests/test_classification.py, test_cohen_kappa,
    // "Weighting example: none, linear, quadratic": y1 = [0]*46+[1]*44+[2]*10,
    // y2 = [0]*50+[1]*40+[2]*10 (the 3×3 ordinal table [[46,0,0],[4,40,0],[0,0,10]]) →
    // κ = 0.9315, κ_linear = 0.9412, κ_quadratic = 0.9541 (4 decimals). Independent
    // recomputation (python3): 0.93150685, 0.94117647, 0.95412844.
    #[test]
    fn scikit_learn_weighting_example() {
        let y1 = repeated(&[(0, 46), (1, 44), (2, 10)]);
        let y2 = repeated(&[(0, 50), (1, 40), (2, 10)]);
        let t = from_vectors(3, &y1, &y2);
        assert_eq!(t, table(3, &[46, 0, 0, 4, 40, 0, 0, 0, 10]));
        for (weights, expected) in [
            (Weights::Unweighted, 0.9315),
            (Weights::Linear, 0.9412),
            (Weights::Quadratic, 0.9541),
        ] {
            assert_close(kappa(&t, weights).unwrap().kappa, expected, 5e-5);
        }
    }

    // Source: SAS PROC FREQ printout (AGREE option) recorded in statsmodels,
    // statsmodels/stats/tests/test_inter_rater.py (UnweightedCohens, TestWeightedCohens) for
    // table10 = [[0,4,1],[0,8,0],[0,1,5]]:
    //   simple kappa 0.4842, ASE 0.1380, 95% CI 0.2137–0.7547, ASE under H0 0.1484;
    //   weighted kappa (scores 0,1,2, i.e. Cicchetti–Allison = linear weights) 0.4701,
    //   ASE 0.1457, 95% CI 0.1845–0.7558, ASE under H0 0.1426.
    // ASE is the Fleiss–Cohen–Everitt (1969) large-sample SE. Independent recomputation
    // (python3, FCE 1969 formulas): 0.48416290 / 0.13801358 / 0.21366125–0.75466454 /
    // 0.14839828 and 0.47011952 / 0.14574605 / 0.18446252–0.75577652 / 0.14258508.
    #[test]
    fn sas_example_with_standard_errors() {
        let t = table(3, &[0, 4, 1, 0, 8, 0, 0, 1, 5]);
        for (weights, expected) in [
            (
                Weights::Unweighted,
                [0.4842, 0.1380, 0.2137, 0.7547, 0.1484],
            ),
            (Weights::Linear, [0.4701, 0.1457, 0.1845, 0.7558, 0.1426]),
        ] {
            let r = kappa(&t, weights).unwrap();
            let (lo, hi) = r.ci95.unwrap();
            let got = [
                r.kappa,
                r.std_error.unwrap(),
                lo,
                hi,
                r.std_error_null.unwrap(),
            ];
            for (g, e) in got.into_iter().zip(expected) {
                assert_close(g, e, 5e-5);
            }
        }
    }

    // Source: R package irr, kappa2() on its `anxiety` data, raters 2 and 3 (anxiety[,2:3]),
    // outputs recorded in statsmodels, statsmodels/stats/tests/test_inter_rater.py
    // (test_cohens_kappa_irr): unweighted κ = -0.006289308 (z = -0.0604067), "equal" (linear)
    // κ = 0.1459075 (z = 1.282472), "squared" (quadratic) κ = 0.2520325 (z = 1.437451).
    // irr's z is κ divided by the FCE 1969 SE under H0; irr uses only the levels that occur
    // (1, 2, 3, 4, 6: five categories). Independent recomputation (python3): -0.00628931,
    // 0.14590747, 0.25203252 with z -0.06040670, 1.28247169, 1.43745148.
    #[test]
    fn irr_anxiety_example_linear_and_quadratic() {
        let rater2 = [3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4];
        let rater3 = [2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2];
        let levels = ["1", "2", "3", "4", "6"];
        let t = Table::from_labelled(
            levels.iter().map(|l| l.to_string()).collect(),
            rater2
                .iter()
                .zip(rater3)
                .map(|(a, b)| (a.to_string(), b.to_string())),
        )
        .unwrap();
        for (weights, value, z) in [
            (Weights::Unweighted, -0.006289308, -0.0604067),
            (Weights::Linear, 0.1459075, 1.282472),
            (Weights::Quadratic, 0.2520325, 1.437451),
        ] {
            let r = kappa(&t, weights).unwrap();
            assert_close(r.kappa, value, 5e-8);
            assert_close(r.kappa / r.std_error_null.unwrap(), z, 5e-6);
        }
    }

    #[test]
    fn identical_raters_have_kappa_one_for_every_weighting() {
        let t = table(3, &[7, 0, 0, 0, 3, 0, 0, 0, 5]);
        for weights in [Weights::Unweighted, Weights::Linear, Weights::Quadratic] {
            let r = kappa(&t, weights).unwrap();
            assert_close(r.kappa, 1.0, 1e-12);
            assert_eq!(r.observed, 1.0);
            assert_eq!(interpret(r.kappa), "almost perfect");
            let (lo, hi) = r.ci95.unwrap();
            assert!(lo <= 1.0 && hi <= 1.0 && lo >= 0.99, "{lo} {hi}");
        }
    }

    #[test]
    fn quadratic_and_linear_equal_unweighted_on_two_categories() {
        for counts in [[20, 5, 10, 15], [3, 9, 1, 0], [0, 4, 4, 0]] {
            let t = table(2, &counts);
            let plain = kappa(&t, Weights::Unweighted).unwrap();
            for weights in [Weights::Linear, Weights::Quadratic] {
                let r = kappa(&t, weights).unwrap();
                assert_close(r.kappa, plain.kappa, 1e-12);
                assert_close(r.std_error.unwrap(), plain.std_error.unwrap(), 1e-12);
            }
        }
    }

    #[test]
    fn kappa_is_symmetric_in_rater_order() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let k = rng.gen_range(2..6);
            let counts: Vec<u64> = (0..k * k).map(|_| rng.gen_range(0..20)).collect();
            let t = table(k, &counts);
            for weights in [Weights::Unweighted, Weights::Linear, Weights::Quadratic] {
                let (Some(a), Some(b)) = (kappa(&t, weights), kappa(&t.transposed(), weights))
                else {
                    continue;
                };
                assert_close(a.kappa, b.kappa, 1e-12);
                assert_close(a.std_error.unwrap(), b.std_error.unwrap(), 1e-12);
                assert_close(a.std_error_null.unwrap(), b.std_error_null.unwrap(), 1e-12);
                assert!(a.kappa <= 1.0 + 1e-12 && a.kappa >= -1.0 - 1e-12);
                assert!(a.kappa.is_finite() && a.std_error.unwrap().is_finite());
            }
        }
    }

    #[test]
    fn weighted_kappa_credits_near_misses_on_an_ordinal_scale() {
        // Disagreements only between neighbouring grades: weighting raises kappa.
        let t = table(4, &[10, 3, 0, 0, 3, 10, 3, 0, 0, 3, 10, 3, 0, 0, 3, 10]);
        let u = kappa(&t, Weights::Unweighted).unwrap().kappa;
        let l = kappa(&t, Weights::Linear).unwrap().kappa;
        let q = kappa(&t, Weights::Quadratic).unwrap().kappa;
        assert!(u < l && l < q, "{u} {l} {q}");
    }

    /// Issue 16: one case (1 against 3) gave "κ 0 (0 – 0)"; below the minimum n a study
    /// reports no kappa, from the minimum n it does.
    #[test]
    fn kappa_is_not_reported_below_the_minimum_n() {
        let mut one = Table::with_size(5);
        one.add(1, 3).unwrap();
        let raw = kappa(&one, Weights::Unweighted).unwrap();
        assert_eq!((raw.kappa, raw.n), (0.0, 1));
        assert_eq!(reportable(Some(raw)), None);
        let mut table = Table::with_size(2);
        for n in 0..MIN_KAPPA_N {
            table
                .add((n % 2) as usize, usize::from(n % 3 == 0))
                .unwrap();
        }
        let enough = kappa(&table, Weights::Unweighted);
        assert!(enough.is_some());
        assert_eq!(reportable(enough), enough);
        let mut fewer = Table::with_size(2);
        for n in 0..MIN_KAPPA_N - 1 {
            fewer
                .add((n % 2) as usize, usize::from(n % 3 == 0))
                .unwrap();
        }
        assert!(kappa(&fewer, Weights::Unweighted).is_some());
        assert_eq!(reportable(kappa(&fewer, Weights::Unweighted)), None);
    }

    #[test]
    fn empty_and_single_category_tables_have_no_kappa() {
        assert_eq!(kappa(&Table::with_size(3), Weights::Unweighted), None);
        assert_eq!(kappa(&Table::with_size(0), Weights::Linear), None);
        assert_eq!(percent_agreement(&Table::with_size(3)), None);
        // Everyone "no DR": expected agreement is 1, kappa is 0/0 → None, not NaN or 1.0.
        let all_one = table(3, &[40, 0, 0, 0, 0, 0, 0, 0, 0]);
        for weights in [Weights::Unweighted, Weights::Linear, Weights::Quadratic] {
            assert_eq!(kappa(&all_one, weights), None);
        }
        assert_eq!(percent_agreement(&all_one), Some(100.0));
        let one_category = table(1, &[12]);
        assert_eq!(kappa(&one_category, Weights::Quadratic), None);
    }

    #[test]
    fn single_disagreement_is_finite() {
        let r = kappa(&table(2, &[0, 1, 0, 0]), Weights::Unweighted).unwrap();
        assert_eq!(r.kappa, 0.0);
        assert!(r.std_error.unwrap().is_finite());
        assert!(serde_json::to_string(&r).is_ok());
    }

    #[test]
    fn tables_refuse_bad_input() {
        assert_eq!(
            Table::from_pairs(labels(2), [(0, 2)]),
            Err(AgreementError::CategoryOutOfRange {
                index: 2,
                categories: 2
            })
        );
        assert_eq!(
            Table::from_labelled(labels(2), [("0", "x")]),
            Err(AgreementError::UnknownLabel("x".into()))
        );
        assert_eq!(
            Table::from_labelled(vec!["a".into(), "a".into()], [("a", "a")]),
            Err(AgreementError::DuplicateLabel("a".into()))
        );
        assert_eq!(
            Table::from_counts(2, &[1, 2, 3]),
            Err(AgreementError::WrongCellCount {
                expected: 4,
                got: 3
            })
        );
        assert_eq!(Table::from_counts(2, &[1, 2, 3, 4]).unwrap().count(1, 0), 3);
        assert_eq!(Table::with_size(2).count(5, 5), 0);
    }

    #[test]
    fn landis_koch_bands() {
        for (k, band) in [
            (-0.3, "poor"),
            (0.0, "slight"),
            (0.2, "slight"),
            (0.21, "fair"),
            (0.4, "fair"),
            (0.41, "moderate"),
            (0.6, "moderate"),
            (0.61, "substantial"),
            (0.8, "substantial"),
            (0.81, "almost perfect"),
            (1.0, "almost perfect"),
            (f64::NAN, "undefined"),
        ] {
            assert_eq!(interpret(k), band, "{k}");
        }
    }

    #[test]
    fn linear_weights_on_a_five_step_scale() {
        assert_eq!(Weights::Linear.agreement(0, 4, 5), 0.0);
        assert_eq!(Weights::Linear.agreement(1, 2, 5), 0.75);
        assert_eq!(Weights::Quadratic.agreement(0, 2, 5), 0.75);
        assert_eq!(Weights::Unweighted.agreement(3, 3, 5), 1.0);
        assert_eq!(Weights::Linear.agreement(0, 0, 1), 1.0);
    }

    fn rating<'a>(case: &'a str, grader: &'a str, item: &'a str, value: usize) -> Rating<'a> {
        Rating {
            case,
            grader,
            item,
            value,
        }
    }

    #[test]
    fn pairwise_pairs_cases_both_graders_rated() {
        let ratings = [
            rating("c1", "g2", "dr", 1),
            rating("c1", "g1", "dr", 1),
            rating("c2", "g1", "dr", 0),
            rating("c2", "g2", "dr", 2),
            rating("c3", "g1", "dr", 2), // only one grader: not paired
            rating("c1", "g1", "dme", 1),
            rating("c1", "g3", "dme", 1),
            rating("c2", "g1", "dr", 2), // duplicate: first grade counts
            rating("c4", "g1", "dr", 9), // off the scale: left out
            rating("c4", "g2", "dr", 0),
        ];
        let out = pairwise(&ratings, 3, Weights::Linear);
        let keys: Vec<_> = out
            .iter()
            .map(|p| {
                (
                    p.item.as_str(),
                    p.grader_a.as_str(),
                    p.grader_b.as_str(),
                    p.n,
                )
            })
            .collect();
        assert_eq!(keys, [("dme", "g1", "g3", 1), ("dr", "g1", "g2", 2)]);
        let dr = &out[1];
        assert_eq!(dr.percent_agreement, Some(50.0));
        let expected = Table::from_pairs(labels(3), [(1, 1), (0, 2)]).unwrap();
        assert_eq!(dr.kappa, kappa(&expected, Weights::Linear));
        assert_eq!(out[0].kappa, None); // one agreeing case: chance agreement is perfect
        assert_eq!(out[0].percent_agreement, Some(100.0));
    }

    #[test]
    fn pairwise_by_uses_each_items_scale_and_skips_unknown_items() {
        let ratings = [
            rating("c1", "a", "dr_grade:OD", 4),
            rating("c1", "b", "dr_grade:OD", 3),
            rating("c1", "a", "dme:OD", 1),
            rating("c1", "b", "dme:OD", 1),
            rating("c1", "a", "note", 0),
            rating("c1", "b", "note", 0),
        ];
        let out = pairwise_by(&ratings, |item| match item.split(':').next()? {
            "dr_grade" => Some((5, Weights::Quadratic)),
            "dme" => Some((2, Weights::Unweighted)),
            _ => None,
        });
        let items: Vec<_> = out.iter().map(|p| (p.item.as_str(), p.weights)).collect();
        assert_eq!(
            items,
            [
                ("dme:OD", Weights::Unweighted),
                ("dr_grade:OD", Weights::Quadratic)
            ]
        );
    }

    #[test]
    fn absurd_scales_are_left_out_not_allocated() {
        let ratings = [rating("c1", "a", "dr", 3), rating("c1", "b", "dr", 3)];
        assert!(pairwise(&ratings, usize::MAX, Weights::Linear).is_empty());
        assert!(intra(&ratings, &ratings, MAX_CATEGORIES + 1, Weights::Linear).is_empty());
        assert_eq!(pairwise(&ratings, MAX_CATEGORIES, Weights::Linear).len(), 1);
        assert!(pairwise(&[], 5, Weights::Linear).is_empty());
    }

    #[test]
    fn three_graders_on_a_case_feed_every_pair() {
        let ratings = [
            rating("c1", "g3", "dr", 0),
            rating("c1", "g1", "dr", 0),
            rating("c1", "g2", "dr", 1),
        ];
        let out = pairwise(&ratings, 2, Weights::Unweighted);
        let pairs: Vec<_> = out
            .iter()
            .map(|p| {
                (
                    p.grader_a.as_str(),
                    p.grader_b.as_str(),
                    p.percent_agreement,
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [
                ("g1", "g2", Some(0.0)),
                ("g1", "g3", Some(100.0)),
                ("g2", "g3", Some(0.0))
            ]
        );
    }

    /// 6,000 cases × 2 graders × 10 items (120,000 ratings, shuffled, four graders so several
    /// pairs): every pair/item table must equal the one built directly while generating.
    #[test]
    fn pairwise_on_a_study_sized_input_matches_direct_tables() {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let graders = ["g1", "g2", "g3", "g4"];
        let items: Vec<String> = (0..10).map(|i| format!("item{i}")).collect();
        let cases: Vec<String> = (0..6000).map(|i| format!("case{i}")).collect();
        let k = 5;
        let mut expected: HashMap<(String, &str, &str), Table> = HashMap::new();
        let mut ratings = Vec::new();
        for case in &cases {
            let mut pair = graders
                .choose_multiple(&mut rng, 2)
                .copied()
                .collect::<Vec<_>>();
            pair.sort();
            for item in &items {
                let a = rng.gen_range(0..k);
                let b = if rng.gen_bool(0.7) {
                    a
                } else {
                    rng.gen_range(0..k)
                };
                expected
                    .entry((item.clone(), pair[0], pair[1]))
                    .or_insert_with(|| Table::with_size(k))
                    .add(a, b)
                    .unwrap();
                ratings.push(rating(case, pair[0], item, a));
                ratings.push(rating(case, pair[1], item, b));
            }
        }
        ratings.shuffle(&mut rng);
        assert_eq!(ratings.len(), 120_000);
        let out = pairwise(&ratings, k, Weights::Quadratic);
        assert_eq!(out.len(), expected.len());
        assert_eq!(out.len(), 60); // 6 pairs × 10 items
        for item in &items {
            let n: u64 = out.iter().filter(|p| &p.item == item).map(|p| p.n).sum();
            assert_eq!(n, 6000);
        }
        for p in &out {
            let table = &expected[&(p.item.clone(), p.grader_a.as_str(), p.grader_b.as_str())];
            assert_eq!(p.n, table.n());
            assert_eq!(p.kappa, kappa(table, Weights::Quadratic));
            assert_eq!(p.percent_agreement, percent_agreement(table));
            assert!(p.kappa.unwrap().kappa > 0.5);
        }
    }

    #[test]
    fn intra_pairs_first_and_repeat_grades_of_the_same_grader() {
        let first = [
            rating("c1", "g1", "dr", 0),
            rating("c2", "g1", "dr", 1),
            rating("c3", "g1", "dr", 2),
            rating("c1", "g2", "dr", 1),
        ];
        let repeat = [
            rating("c1", "g1", "dr", 0),
            rating("c2", "g1", "dr", 2),
            rating("c2", "g1", "dr", 0), // second repeat of c2: ignored
            rating("c9", "g1", "dr", 0), // no first grade
            rating("c1", "g2", "dr", 1),
            rating("c1", "g2", "dme", 1), // no first grade of this item
        ];
        let out = intra(&first, &repeat, 3, Weights::Unweighted);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].grader.as_str(), out[0].n), ("g1", 2));
        assert_eq!(out[0].percent_agreement, Some(50.0));
        let expected = Table::from_pairs(labels(3), [(0, 0), (1, 2)]).unwrap();
        assert_eq!(out[0].kappa, kappa(&expected, Weights::Unweighted));
        assert_eq!((out[1].grader.as_str(), out[1].n), ("g2", 1));
        assert!(intra(&[], &repeat, 3, Weights::Linear).is_empty());
    }
}
