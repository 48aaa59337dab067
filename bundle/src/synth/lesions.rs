//! Planning lesions on the retina, in millimetres, before any image is drawn.
//!
//! The plan is the single source of every lesion: the fundus renderer paints it, the OCT renderer
//! lifts the RPE over drusen and opens fluid spaces, and the ground truth is computed from it.
//! Each lesion type draws positions from its own random stream seeded without the visit, so a later
//! visit with more lesions of a type keeps the earlier ones in place (progression, not reshuffling);
//! how many lesions there are is drawn from the visit's stream.

use std::f64::consts::{PI, TAU};

use super::disease::{Disease, EyeGrades};
use super::geometry::{Anatomy, FUNDUS_FIELD_MM, RetinaPoint};
use super::rng::{SynthRng, chance, int, normal, stream, uniform};
use super::truth::LesionKind;
use super::vessels::VesselTree;

/// One lesion of the fundus, on the retina.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedLesion {
    /// Lesion type.
    pub kind: LesionKind,
    /// Centre on the retina.
    pub centre: RetinaPoint,
    /// Radius of the long axis in millimetres; the whole lesion lies within it.
    pub radius: f64,
    /// Ratio of the long to the short axis (1 for round lesions).
    pub elongation: f64,
    /// Direction of the long axis in radians, in the right-eye retina frame.
    pub orientation: f64,
    /// Boundary irregularity: amplitude and phase of the 2nd, 3rd and 5th harmonics.
    pub harmonics: [(f64, f64); 3],
    /// Elevation of the RPE over a druse on OCT, in micrometres (0 for other lesions).
    pub height_um: f64,
    /// Seed of the lesion's internal texture (the vessel loops of neovascularization).
    pub seed: u64,
}

impl PlannedLesion {
    /// Radius of the circle around the centre that encloses the irregular boundary, in millimetres.
    pub fn extent(&self) -> f64 {
        let wobble: f64 = self
            .harmonics
            .iter()
            .map(|(amplitude, _)| amplitude.abs())
            .sum();
        self.radius * (1.0 + wobble)
    }

    /// How far inside the lesion's irregular boundary `point` is: 1 at the centre, 0 on the
    /// boundary, negative outside.
    pub fn inside(&self, point: RetinaPoint) -> f64 {
        let dx = point.x - self.centre.x;
        let dy = point.y - self.centre.y;
        let (sin, cos) = self.orientation.sin_cos();
        let along = dx * cos + dy * sin;
        let across = (-dx * sin + dy * cos) * self.elongation;
        let distance = along.hypot(across);
        let angle = across.atan2(along);
        let wobble: f64 = [2.0, 3.0, 5.0]
            .iter()
            .zip(self.harmonics.iter())
            .map(|(order, (amplitude, phase))| amplitude * (order * angle + phase).sin())
            .sum();
        1.0 - distance / (self.radius * (1.0 + wobble)).max(1e-9)
    }
}

/// Which retinal interface a fluid space opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FluidLayer {
    /// A cyst in the inner nuclear layer.
    InnerNuclear,
    /// A cyst at the outer plexiform / outer nuclear layer junction (Henle fibre layer).
    OuterPlexiform,
    /// Subretinal fluid between the photoreceptors and the RPE.
    Subretinal,
}

/// A fluid space seen on OCT, an ellipsoid on the retina.
#[derive(Debug, Clone, PartialEq)]
pub struct FluidPocket {
    /// [`LesionKind::IntraretinalFluid`] or [`LesionKind::SubretinalFluid`].
    pub kind: LesionKind,
    /// Centre on the retina.
    pub centre: RetinaPoint,
    /// Horizontal semi-axis in millimetres.
    pub radius_x: f64,
    /// Vertical semi-axis in millimetres.
    pub radius_y: f64,
    /// Height at the centre in micrometres.
    pub height_um: f64,
    /// The interface the fluid opens.
    pub layer: FluidLayer,
}

impl FluidPocket {
    /// The pocket's height in micrometres at `point` (0 outside it).
    ///
    /// Cysts are ellipsoids; subretinal fluid is a dome whose edges taper into the attached retina.
    pub fn height_at(&self, point: RetinaPoint) -> f64 {
        let dx = (point.x - self.centre.x) / self.radius_x;
        let dy = (point.y - self.centre.y) / self.radius_y;
        let inside = 1.0 - dx * dx - dy * dy;
        if inside <= 0.0 {
            return 0.0;
        }
        match self.layer {
            FluidLayer::Subretinal => self.height_um * inside * inside.sqrt(),
            FluidLayer::InnerNuclear | FluidLayer::OuterPlexiform => self.height_um * inside.sqrt(),
        }
    }

    /// The largest height on the line `y` (the B-scan through it), in micrometres.
    pub fn peak_height_on_line(&self, y: f64) -> f64 {
        self.height_at(RetinaPoint::new(self.centre.x, y))
    }
}

/// Everything abnormal about one eye at one visit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LesionPlan {
    /// Lesions seen in the fundus photograph (drusen and exudates also show on OCT).
    pub lesions: Vec<PlannedLesion>,
    /// Fluid spaces seen on OCT.
    pub fluid: Vec<FluidPocket>,
    /// Diffuse thickening of the central retina on OCT, in micrometres at the fovea.
    pub edema_um: f64,
    /// Loss of the inner retinal layers (glaucoma) on OCT, from 0 (none) to 1.
    pub inner_thinning: f64,
}

/// Where lesions may go: inside the photograph's field, off the disc, clear of vessels and of each
/// other.
struct Placer<'a> {
    anatomy: &'a Anatomy,
    tree: &'a VesselTree,
    field_centre: RetinaPoint,
    placed: Vec<PlannedLesion>,
}

/// Rules a candidate position must satisfy.
#[derive(Clone, Copy)]
struct Rules {
    /// Minimum clearance to vessel walls, as a fraction of the lesion radius (negative: any).
    vessel_clearance: f64,
    /// Whether the lesion may overlap earlier lesions of its own kind (exudate clusters,
    /// neovascular tufts); it never overlaps lesions of other kinds.
    may_overlap: bool,
    /// Whether the lesion may lie on the optic disc.
    may_cover_disc: bool,
}

const STRICT: Rules = Rules {
    vessel_clearance: 1.0,
    may_overlap: false,
    may_cover_disc: false,
};

impl Placer<'_> {
    fn acceptable(&self, kind: LesionKind, centre: RetinaPoint, radius: f64, rules: Rules) -> bool {
        let field_radius = FUNDUS_FIELD_MM / 2.0;
        if centre.distance(self.field_centre) + radius + 0.25 > field_radius {
            return false;
        }
        let disc_margin = 1.15 + radius / self.anatomy.disc_radius_x;
        if !rules.may_cover_disc && self.anatomy.disc_distance(centre) < disc_margin {
            return false;
        }
        if rules.vessel_clearance >= 0.0
            && self.tree.clearance(centre) < radius * rules.vessel_clearance + 0.01
        {
            return false;
        }
        let overlaps = self.placed.iter().any(|other| {
            let exempt = rules.may_overlap && other.kind == kind;
            // Neovascular tufts are thin loops drawn over everything else.
            let tuft = other.kind == LesionKind::Neovascularization
                || kind == LesionKind::Neovascularization;
            !exempt && !tuft && other.centre.distance(centre) < other.extent() + radius + 0.02
        });
        if overlaps {
            return false;
        }
        true
    }

    /// Tries up to 60 candidates from `sample`; places and returns the first acceptable one.
    fn place(
        &mut self,
        rng: &mut SynthRng,
        kind: LesionKind,
        radius: f64,
        rules: Rules,
        sample: &dyn Fn(&mut SynthRng) -> RetinaPoint,
    ) -> Option<PlannedLesion> {
        for _ in 0..60 {
            let centre = sample(rng);
            if !self.acceptable(kind, centre, radius, rules) {
                continue;
            }
            let irregular = match kind {
                LesionKind::Hemorrhage | LesionKind::SubretinalHemorrhage => 0.12,
                LesionKind::CottonWoolSpot | LesionKind::Hyperpigmentation => 0.1,
                LesionKind::Drusen => 0.04,
                _ => 0.0,
            };
            let lesion = PlannedLesion {
                kind,
                centre,
                radius,
                elongation: 1.0 + irregular * uniform(rng, 0.0, 2.0),
                orientation: uniform(rng, 0.0, PI),
                harmonics: [
                    (irregular * uniform(rng, 0.0, 1.0), uniform(rng, 0.0, TAU)),
                    (irregular * uniform(rng, 0.0, 0.8), uniform(rng, 0.0, TAU)),
                    (irregular * uniform(rng, 0.0, 0.5), uniform(rng, 0.0, TAU)),
                ],
                height_um: 0.0,
                seed: rand::RngCore::next_u64(rng),
            };
            self.placed.push(lesion.clone());
            return Some(lesion);
        }
        None
    }
}

/// A point uniformly distributed in the disc of `radius` around `centre`.
fn in_disc(rng: &mut SynthRng, centre: RetinaPoint, radius: f64) -> RetinaPoint {
    let distance = radius * uniform(rng, 0.0, 1.0).sqrt();
    let angle = uniform(rng, 0.0, TAU);
    RetinaPoint::new(
        centre.x + distance * angle.cos(),
        centre.y + distance * angle.sin(),
    )
}

/// A point in the annulus `inner..outer` around `centre`.
fn in_annulus(rng: &mut SynthRng, centre: RetinaPoint, inner: f64, outer: f64) -> RetinaPoint {
    let distance = uniform(rng, inner * inner, outer * outer).sqrt();
    let angle = uniform(rng, 0.0, TAU);
    RetinaPoint::new(
        centre.x + distance * angle.cos(),
        centre.y + distance * angle.sin(),
    )
}

/// Plans the lesions of one eye.
///
/// `placement_seed` seeds where lesions go (stable across visits); `counts` decides how many.
pub fn plan(
    disease: &Disease,
    grades: &EyeGrades,
    anatomy: &Anatomy,
    tree: &VesselTree,
    placement_seed: u64,
    counts: &mut SynthRng,
) -> LesionPlan {
    let mut placer = Placer {
        anatomy,
        tree,
        field_centre: RetinaPoint::new(0.2 * anatomy.disc_centre.x, 0.4 * anatomy.disc_centre.y),
        placed: Vec::new(),
    };
    let mut plan = LesionPlan::default();
    let stream_for = |label: &str| stream(placement_seed, &["lesion", label]);
    match *disease {
        Disease::Normal => {}
        Disease::DiabeticRetinopathy { icdr_level, dme } => {
            plan_diabetic(&mut placer, &mut plan, icdr_level, dme, counts, &stream_for);
        }
        Disease::Amd { areds_category } => {
            plan_amd(&mut placer, &mut plan, areds_category, counts, &stream_for);
        }
        Disease::Glaucoma { .. } => {
            plan.inner_thinning = ((grades.vcdr - 0.5) * 1.2).clamp(0.0, 0.5);
        }
    }
    plan.lesions = placer.placed;
    plan
}

fn plan_diabetic(
    placer: &mut Placer<'_>,
    plan: &mut LesionPlan,
    level: u8,
    dme: bool,
    counts: &mut SynthRng,
    stream_for: &dyn Fn(&str) -> SynthRng,
) {
    let field_centre = placer.field_centre;
    let posterior_pole = RetinaPoint::new(0.8, 0.0);
    // Neovascularization first, so hemorrhages keep off it.
    if level == 4 {
        let mut rng = stream_for("neovascularization");
        let on_disc = chance(&mut rng, 0.5);
        let disc_centre = placer.anatomy.disc_centre;
        let disc_radius = placer.anatomy.disc_radius_x;
        if on_disc {
            let radius = uniform(&mut rng, 0.45, 0.7);
            let rules = Rules {
                vessel_clearance: -1.0,
                may_overlap: true,
                may_cover_disc: true,
            };
            placer.place(
                &mut rng,
                LesionKind::Neovascularization,
                radius,
                rules,
                &|rng| in_disc(rng, disc_centre, 0.4 * disc_radius),
            );
        }
        let elsewhere = if on_disc {
            int(counts, 0, 1)
        } else {
            int(counts, 1, 2)
        };
        for _ in 0..elsewhere {
            let radius = uniform(&mut rng, 0.3, 0.55);
            let rules = Rules {
                vessel_clearance: -1.0,
                ..STRICT
            };
            placer.place(
                &mut rng,
                LesionKind::Neovascularization,
                radius,
                rules,
                &|rng| in_annulus(rng, disc_centre, 2.5, 5.0),
            );
        }
    }
    let microaneurysms = match level {
        0 => 0,
        1 => int(counts, 2, 6),
        2 => int(counts, 6, 18),
        3 => int(counts, 15, 35),
        _ => int(counts, 10, 30),
    };
    let mut rng = stream_for("microaneurysm");
    for _ in 0..microaneurysms {
        let radius = uniform(&mut rng, 0.013, 0.028);
        placer.place(
            &mut rng,
            LesionKind::Microaneurysm,
            radius,
            STRICT,
            &|rng| in_disc(rng, posterior_pole, 4.5),
        );
    }
    let mut rng = stream_for("hemorrhage");
    let hemorrhage_radius = |rng: &mut SynthRng| {
        if chance(rng, 0.6) {
            uniform(rng, 0.035, 0.075)
        } else {
            uniform(rng, 0.08, 0.2)
        }
    };
    let hemorrhage_rules = Rules {
        vessel_clearance: 0.4,
        ..STRICT
    };
    if level == 3 {
        // Severe NPDR: more than 20 hemorrhages in each of the four quadrants (the 4-2-1 rule).
        for quadrant in 0..4 {
            let count = int(counts, 21, 26);
            let start = f64::from(quadrant) * PI / 2.0;
            for _ in 0..count {
                let radius = hemorrhage_radius(&mut rng);
                placer.place(
                    &mut rng,
                    LesionKind::Hemorrhage,
                    radius,
                    hemorrhage_rules,
                    &|rng| {
                        let angle = start + uniform(rng, 0.05, PI / 2.0 - 0.05);
                        let distance = 6.0 * uniform(rng, 0.02, 1.0).sqrt();
                        RetinaPoint::new(
                            field_centre.x + distance * angle.cos(),
                            field_centre.y + distance * angle.sin(),
                        )
                    },
                );
            }
        }
    } else {
        let count = match level {
            2 => int(counts, 3, 10),
            4 => int(counts, 8, 20),
            _ => 0,
        };
        for _ in 0..count {
            let radius = hemorrhage_radius(&mut rng);
            placer.place(
                &mut rng,
                LesionKind::Hemorrhage,
                radius,
                hemorrhage_rules,
                &|rng| in_disc(rng, posterior_pole, 5.0),
            );
        }
    }
    let cotton_wool = match level {
        2 => int(counts, 0, 2),
        3 => int(counts, 2, 5),
        4 => int(counts, 1, 4),
        _ => 0,
    };
    let mut rng = stream_for("cotton-wool");
    let trunks: Vec<_> = placer
        .tree
        .vessels
        .iter()
        .filter(|vessel| vessel.generation == 0)
        .flat_map(|vessel| vessel.nodes.windows(2))
        .filter(|pair| {
            let distance = pair[0].point.distance(placer.anatomy.disc_centre);
            (1.2..4.5).contains(&distance)
        })
        .map(|pair| {
            (
                pair[0].point,
                (pair[1].point.y - pair[0].point.y).atan2(pair[1].point.x - pair[0].point.x),
            )
        })
        .collect();
    for _ in 0..cotton_wool {
        if trunks.is_empty() {
            break;
        }
        let radius = uniform(&mut rng, 0.17, 0.32);
        let rules = Rules {
            vessel_clearance: -1.0,
            ..STRICT
        };
        let sample = |rng: &mut SynthRng| {
            let pick = int(rng, 0, trunks.len() as u32 - 1) as usize;
            let (point, heading) = trunks[pick];
            let offset = uniform(rng, 0.2, 0.45) * if chance(rng, 0.5) { 1.0 } else { -1.0 };
            RetinaPoint::new(
                point.x - offset * heading.sin(),
                point.y + offset * heading.cos(),
            )
        };
        if let Some(lesion) =
            placer.place(&mut rng, LesionKind::CottonWoolSpot, radius, rules, &sample)
        {
            // Cotton-wool spots are elongated along the nerve fibres, roughly radial from the disc.
            if let Some(last) = placer.placed.last_mut() {
                last.elongation = uniform(&mut rng, 1.3, 1.9);
                last.orientation = (lesion.centre.y - placer.anatomy.disc_centre.y)
                    .atan2(lesion.centre.x - placer.anatomy.disc_centre.x);
            }
        }
    }
    let extramacular_clusters = match level {
        2 => int(counts, 0, 1),
        3 => int(counts, 1, 2),
        4 => int(counts, 0, 2),
        _ => 0,
    };
    let mut rng = stream_for("exudate");
    for _ in 0..extramacular_clusters {
        exudate_cluster(placer, &mut rng, counts, &|rng| {
            in_annulus(rng, posterior_pole, 2.2, 4.8)
        });
    }
    if dme {
        let mut rng = stream_for("macular-exudate");
        for _ in 0..int(counts, 2, 4) {
            exudate_cluster(placer, &mut rng, counts, &|rng| {
                in_annulus(rng, RetinaPoint::new(0.0, 0.0), 0.45, 1.5)
            });
        }
        plan.edema_um = uniform(counts, 40.0, 90.0);
        let mut rng = stream_for("intraretinal-fluid");
        for _ in 0..int(counts, 4, 9) {
            if let Some(pocket) = fluid_cyst(&mut rng, &plan.fluid, 1.1) {
                plan.fluid.push(pocket);
            }
        }
    }
}

/// A cluster (clump or circinate ring) of hard exudate dots.
fn exudate_cluster(
    placer: &mut Placer<'_>,
    rng: &mut SynthRng,
    counts: &mut SynthRng,
    sample_centre: &dyn Fn(&mut SynthRng) -> RetinaPoint,
) {
    let centre = sample_centre(rng);
    let ring = chance(rng, 0.4);
    let spread = if ring {
        uniform(rng, 0.25, 0.5)
    } else {
        uniform(rng, 0.08, 0.2)
    };
    let dots = int(counts, 5, 14);
    let rules = Rules {
        vessel_clearance: 1.0,
        may_overlap: true,
        may_cover_disc: false,
    };
    for _ in 0..dots {
        let radius = uniform(rng, 0.012, 0.034);
        placer.place(rng, LesionKind::HardExudate, radius, rules, &|rng| {
            if ring {
                let angle = uniform(rng, 0.0, TAU);
                let distance = spread * (1.0 + 0.15 * normal(rng));
                RetinaPoint::new(
                    centre.x + distance * angle.cos(),
                    centre.y + distance * angle.sin(),
                )
            } else {
                RetinaPoint::new(
                    centre.x + spread * normal(rng) * 0.6,
                    centre.y + spread * normal(rng) * 0.6,
                )
            }
        });
    }
}

/// An intraretinal cyst within `max_eccentricity` of the fovea, clear of existing cysts.
fn fluid_cyst(
    rng: &mut SynthRng,
    existing: &[FluidPocket],
    max_eccentricity: f64,
) -> Option<FluidPocket> {
    for _ in 0..40 {
        let centre = in_disc(rng, RetinaPoint::new(0.0, 0.0), max_eccentricity);
        let radius_x = uniform(rng, 0.08, 0.26);
        let radius_y = radius_x * uniform(rng, 0.7, 1.3);
        let layer = if chance(rng, 0.5) {
            FluidLayer::InnerNuclear
        } else {
            FluidLayer::OuterPlexiform
        };
        let clear = existing.iter().all(|other| {
            other.layer != layer
                || other.centre.distance(centre)
                    > other.radius_x.max(other.radius_y) + radius_x.max(radius_y)
        });
        if clear {
            return Some(FluidPocket {
                kind: LesionKind::IntraretinalFluid,
                centre,
                radius_x,
                radius_y,
                height_um: uniform(rng, 40.0, 140.0) * (radius_x / 0.2).clamp(0.5, 1.0),
                layer,
            });
        }
    }
    None
}

fn plan_amd(
    placer: &mut Placer<'_>,
    plan: &mut LesionPlan,
    category: u8,
    counts: &mut SynthRng,
    stream_for: &dyn Fn(&str) -> SynthRng,
) {
    let fovea = RetinaPoint::new(0.0, 0.0);
    let mut rng = stream_for("subretinal");
    if category == 4 {
        let radius = uniform(&mut rng, 0.5, 0.95);
        let rules = Rules {
            vessel_clearance: -1.0,
            ..STRICT
        };
        if let Some(hemorrhage) = placer.place(
            &mut rng,
            LesionKind::SubretinalHemorrhage,
            radius,
            rules,
            &|rng| in_annulus(rng, fovea, 0.5, 1.0),
        ) {
            plan.fluid.push(FluidPocket {
                kind: LesionKind::SubretinalFluid,
                centre: RetinaPoint::new(hemorrhage.centre.x * 0.5, hemorrhage.centre.y * 0.5),
                radius_x: uniform(&mut rng, 0.8, 1.3),
                radius_y: uniform(&mut rng, 0.7, 1.1),
                height_um: uniform(&mut rng, 90.0, 200.0),
                layer: FluidLayer::Subretinal,
            });
        }
        plan.edema_um = uniform(&mut rng, 20.0, 50.0);
        for _ in 0..int(counts, 0, 2) {
            if let Some(pocket) = fluid_cyst(&mut rng, &plan.fluid, 0.8) {
                plan.fluid.push(pocket);
            }
        }
    }
    // (small, intermediate, large) drusen counts per category.
    let (small, intermediate, large) = match category {
        1 => (int(counts, 0, 4), 0, 0),
        2 => (int(counts, 8, 20), int(counts, 1, 4), 0),
        3 => (int(counts, 5, 15), int(counts, 10, 25), int(counts, 2, 6)),
        _ => (int(counts, 3, 8), int(counts, 8, 15), int(counts, 3, 6)),
    };
    // Larger drusen first: they are the ones that matter for the grade, so they get the room.
    for (label, count, low, high) in [
        ("drusen-large", large, 0.066, 0.13),
        ("drusen-intermediate", intermediate, 0.033, 0.06),
        ("drusen-small", small, 0.014, 0.029),
    ] {
        let mut rng = stream_for(label);
        for _ in 0..count {
            let radius = uniform(&mut rng, low, high);
            let rules = Rules {
                vessel_clearance: 0.6,
                ..STRICT
            };
            let placed = placer.place(&mut rng, LesionKind::Drusen, radius, rules, &|rng| {
                let distance = (normal(rng).abs() * 1.1).min(2.8);
                let angle = uniform(rng, 0.0, TAU);
                RetinaPoint::new(distance * angle.cos(), distance * angle.sin())
            });
            if let (Some(_), Some(last)) = (placed, placer.placed.last_mut()) {
                last.height_um = radius * 1000.0 * uniform(&mut rng, 0.45, 0.8);
            }
        }
    }
    let pigment = match category {
        3 => int(counts, 1, 4),
        4 => int(counts, 2, 5),
        _ => 0,
    };
    let mut rng = stream_for("hyperpigmentation");
    for _ in 0..pigment {
        let radius = uniform(&mut rng, 0.025, 0.06);
        placer.place(
            &mut rng,
            LesionKind::Hyperpigmentation,
            radius,
            STRICT,
            &|rng| in_disc(rng, fovea, 1.8),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::disease::grades_for;
    use readroom_domain::manifest::Eye;

    fn plan_for(disease: &Disease, seed: u64) -> LesionPlan {
        let anatomy = Anatomy::generate(&mut stream(seed, &["anatomy"]), 0.3);
        let tree = VesselTree::generate(&anatomy, &mut stream(seed, &["vessels"]));
        let grades = grades_for(disease, Eye::Od, 0.3, &mut stream(seed, &["grades"]));
        plan(
            disease,
            &grades,
            &anatomy,
            &tree,
            seed,
            &mut stream(seed, &["counts"]),
        )
    }

    fn count(plan: &LesionPlan, kind: LesionKind) -> usize {
        plan.lesions
            .iter()
            .filter(|lesion| lesion.kind == kind)
            .count()
    }

    #[test]
    fn severity_drives_the_lesion_mix() {
        let normal = plan_for(&Disease::Normal, 1);
        assert!(normal.lesions.is_empty() && normal.fluid.is_empty());
        let mild = plan_for(
            &Disease::DiabeticRetinopathy {
                icdr_level: 1,
                dme: false,
            },
            1,
        );
        assert!(count(&mild, LesionKind::Microaneurysm) >= 2);
        assert_eq!(count(&mild, LesionKind::Hemorrhage), 0);
        let severe = plan_for(
            &Disease::DiabeticRetinopathy {
                icdr_level: 3,
                dme: true,
            },
            1,
        );
        assert!(count(&severe, LesionKind::Hemorrhage) > 60);
        assert!(count(&severe, LesionKind::HardExudate) > 5);
        assert!(!severe.fluid.is_empty() && severe.edema_um > 0.0);
        let proliferative = plan_for(
            &Disease::DiabeticRetinopathy {
                icdr_level: 4,
                dme: false,
            },
            1,
        );
        assert!(count(&proliferative, LesionKind::Neovascularization) >= 1);
        let amd = plan_for(&Disease::Amd { areds_category: 3 }, 1);
        assert!(count(&amd, LesionKind::Drusen) > 10);
        assert!(
            amd.lesions
                .iter()
                .filter(|l| l.kind == LesionKind::Drusen)
                .all(|l| l.height_um > 0.0)
        );
        let wet = plan_for(&Disease::Amd { areds_category: 4 }, 1);
        assert!(
            wet.fluid
                .iter()
                .any(|pocket| pocket.kind == LesionKind::SubretinalFluid)
        );
    }

    #[test]
    fn lesions_do_not_overlap_and_avoid_the_disc() {
        let plan = plan_for(
            &Disease::DiabeticRetinopathy {
                icdr_level: 3,
                dme: false,
            },
            2,
        );
        let anatomy = Anatomy::generate(&mut stream(2, &["anatomy"]), 0.3);
        let blots: Vec<_> = plan
            .lesions
            .iter()
            .filter(|l| matches!(l.kind, LesionKind::Hemorrhage | LesionKind::Microaneurysm))
            .collect();
        for (index, first) in blots.iter().enumerate() {
            assert!(anatomy.disc_distance(first.centre) > 1.0);
            for second in &blots[index + 1..] {
                assert!(first.centre.distance(second.centre) > first.radius + second.radius);
            }
        }
    }

    #[test]
    fn irregular_boundary_contains_the_centre() {
        let plan = plan_for(
            &Disease::DiabeticRetinopathy {
                icdr_level: 2,
                dme: false,
            },
            3,
        );
        for lesion in &plan.lesions {
            assert!((lesion.inside(lesion.centre) - 1.0).abs() < 1e-9);
            let far = RetinaPoint::new(lesion.centre.x + lesion.radius * 2.0, lesion.centre.y);
            assert!(lesion.inside(far) < 0.0);
        }
    }
}
