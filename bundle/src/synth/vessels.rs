//! The retinal vessel tree of one eye: generation in retina millimetres and rasterization.
//!
//! Four arcades leave the optic disc, each an artery and a vein: the temporal pair follow a
//! parabola that arches around the macula, the nasal pair run up and down towards the periphery.
//! Every vessel is a walker that advances in small steps with a smoothly varying heading
//! (tortuosity), tapers, and spawns thinner branches whose calibres follow Murray's law.
//! Branches on the macular side head for the fovea and stop at the foveal avascular zone.
//! Veins are wider and more tortuous than arteries.
//!
//! The same tree is rasterized into the fundus photograph, the en-face image and the OCT
//! shadow map, so all modalities of one eye show the same vessels.

use std::collections::VecDeque;
use std::f64::consts::{FRAC_PI_2, PI};

use super::geometry::{Anatomy, ImageFrame, RetinaPoint};
use super::rng::{SynthRng, chance, normal, uniform};

/// Arc length between two consecutive vessel nodes, in millimetres.
const STEP_MM: f64 = 0.04;
/// Vessels thinner than this radius (millimetres) end: they would be invisible in a photograph.
const MIN_RADIUS_MM: f64 = 0.0065;
/// Radius of the foveal avascular zone, in millimetres.
const FAZ_RADIUS_MM: f64 = 0.3;
/// Vessels end this far from the fovea (beyond every image's field).
const MAX_ECCENTRICITY_MM: f64 = 9.5;
/// Upper bound on the nodes of one tree, so no parameter can make generation unbounded.
const MAX_NODES: usize = 120_000;
/// Upper bound on the vessels of one tree.
const MAX_VESSELS: usize = 4_000;

/// Whether a vessel carries oxygenated (artery) or returning (vein) blood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VesselKind {
    /// Retinal arteriole: lighter, thinner, straighter, with a strong central light reflex.
    Artery,
    /// Retinal venule: darker, wider, more tortuous.
    Vein,
}

/// One sample along a vessel's centreline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VesselNode {
    /// Position on the retina.
    pub point: RetinaPoint,
    /// Vessel radius at this node, in millimetres.
    pub radius: f64,
}

/// One unbranched vessel segment, from its origin (disc or parent vessel) to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Vessel {
    /// Artery or vein.
    pub kind: VesselKind,
    /// Branching depth: 0 for the trunks leaving the disc.
    pub generation: u8,
    /// Centreline samples, about 40 µm apart.
    pub nodes: Vec<VesselNode>,
}

/// All vessels of one eye.
#[derive(Debug, Clone, PartialEq)]
pub struct VesselTree {
    /// The vessels, trunks first, in generation order.
    pub vessels: Vec<Vessel>,
    index: NodeIndex,
}

/// What a walker steers towards.
#[derive(Debug, Clone, Copy)]
enum Guide {
    /// Follow the temporal arcade: half an ellipse around the macula with semi-axes `along`
    /// (temporal) and `across` (vertical), starting vertically at the disc (`sign` -1 superior).
    Arcade { along: f64, across: f64, sign: f64 },
    /// Keep roughly the initial heading.
    Heading(f64),
    /// Head for a point (branches feeding the macula).
    Toward(RetinaPoint),
}

/// A vessel being grown.
#[derive(Debug, Clone)]
struct Walker {
    kind: VesselKind,
    generation: u8,
    point: RetinaPoint,
    heading: f64,
    radius: f64,
    guide: Guide,
    steer: f64,
    /// Tortuosity: two sinusoidal curvature terms (amplitude rad/mm, wavenumber rad/mm, phase).
    wiggle: [(f64, f64, f64); 2],
    /// Arc length to walk before the next branch.
    next_branch: f64,
    /// Whether the vessel may end inside the optic disc (only trunks start there).
    from_disc: bool,
    /// The half of the retina the vessel supplies: -1 superior, +1 inferior. Temporal to the fovea
    /// vessels do not cross the horizontal raphe into the other half.
    side: f64,
}

/// Normalizes an angle to `(-π, π]`.
fn wrap_angle(angle: f64) -> f64 {
    let mut wrapped = angle % (2.0 * PI);
    if wrapped > PI {
        wrapped -= 2.0 * PI;
    } else if wrapped <= -PI {
        wrapped += 2.0 * PI;
    }
    wrapped
}

fn wiggle(rng: &mut SynthRng, kind: VesselKind, radius: f64) -> [(f64, f64, f64); 2] {
    // Veins and small vessels are more tortuous.
    let base = match kind {
        VesselKind::Artery => 0.45,
        VesselKind::Vein => 0.75,
    } * (1.0 + (0.05 - radius).max(0.0) * 12.0);
    [
        (
            base * uniform(rng, 0.5, 1.0),
            uniform(rng, 2.5, 5.0),
            uniform(rng, 0.0, 2.0 * PI),
        ),
        (
            base * uniform(rng, 0.6, 1.3),
            uniform(rng, 7.0, 14.0),
            uniform(rng, 0.0, 2.0 * PI),
        ),
    ]
}

fn branch_interval(rng: &mut SynthRng, radius: f64) -> f64 {
    uniform(rng, 0.6, 1.6) * (0.8 + radius * 14.0)
}

impl VesselTree {
    /// Grows the vessel tree of an eye.
    pub fn generate(anatomy: &Anatomy, rng: &mut SynthRng) -> VesselTree {
        let disc = anatomy.disc_centre;
        let fovea = RetinaPoint::new(0.0, 0.0);
        let mut queue = VecDeque::new();
        for sign in [-1.0f64, 1.0] {
            // Temporal arcades: vein and artery side by side, crossing now and then.
            for kind in [VesselKind::Vein, VesselKind::Artery] {
                let (radius, spread) = match kind {
                    VesselKind::Vein => (uniform(rng, 0.066, 0.078), 1.08),
                    VesselKind::Artery => (uniform(rng, 0.048, 0.056), 0.92),
                };
                let along = uniform(rng, 5.0, 6.5) * spread;
                let across = uniform(rng, 2.6, 3.3) * spread;
                let start = RetinaPoint::new(
                    disc.x - uniform(rng, 0.0, 0.12),
                    disc.y + sign * uniform(rng, 0.05, 0.15),
                );
                queue.push_back(Walker {
                    kind,
                    generation: 0,
                    point: start,
                    heading: sign * (FRAC_PI_2 + uniform(rng, 0.0, 0.2)),
                    radius,
                    guide: Guide::Arcade {
                        along,
                        across,
                        sign,
                    },
                    steer: 2.5,
                    wiggle: wiggle(rng, kind, radius),
                    next_branch: uniform(rng, 0.9, 1.6),
                    from_disc: true,
                    side: sign,
                });
            }
            // Nasal arcades.
            for kind in [VesselKind::Vein, VesselKind::Artery] {
                let radius = match kind {
                    VesselKind::Vein => uniform(rng, 0.05, 0.06),
                    VesselKind::Artery => uniform(rng, 0.038, 0.046),
                };
                let heading = sign * uniform(rng, 0.75, 1.15);
                queue.push_back(Walker {
                    kind,
                    generation: 0,
                    point: RetinaPoint::new(disc.x + uniform(rng, 0.0, 0.1), disc.y + sign * 0.08),
                    heading,
                    radius,
                    guide: Guide::Heading(heading + sign * 0.4),
                    steer: 0.6,
                    wiggle: wiggle(rng, kind, radius),
                    next_branch: uniform(rng, 0.8, 1.4),
                    from_disc: true,
                    side: sign,
                });
            }
        }
        // Small macular vessels leaving the temporal disc margin straight for the fovea, and small
        // nasal ones.
        for index in 0..4 {
            let kind = if index % 2 == 0 {
                VesselKind::Artery
            } else {
                VesselKind::Vein
            };
            let temporal = index < 3;
            let offset = uniform(rng, -0.5, 0.5) * anatomy.disc_radius_y;
            let radius = uniform(rng, 0.014, 0.024);
            let heading = if temporal {
                PI + uniform(rng, -0.25, 0.25)
            } else {
                uniform(rng, -0.3, 0.3)
            };
            queue.push_back(Walker {
                kind,
                generation: 1,
                point: RetinaPoint::new(
                    disc.x + if temporal { -0.3 } else { 0.3 } * anatomy.disc_radius_x,
                    disc.y + offset,
                ),
                heading,
                radius,
                guide: if temporal {
                    Guide::Toward(fovea)
                } else {
                    Guide::Heading(heading)
                },
                steer: 0.5,
                wiggle: wiggle(rng, kind, radius),
                next_branch: uniform(rng, 0.5, 1.2),
                from_disc: true,
                side: if offset < 0.0 { -1.0 } else { 1.0 },
            });
        }

        let mut vessels = Vec::new();
        let mut total_nodes = 0usize;
        let mut occupancy = Occupancy::new();
        while let Some(walker) = queue.pop_front() {
            if vessels.len() >= MAX_VESSELS || total_nodes >= MAX_NODES {
                break;
            }
            let id = vessels.len() as u32 + 1;
            let vessel = grow(walker, anatomy, rng, &mut queue, &mut occupancy, id);
            total_nodes += vessel.nodes.len();
            if vessel.nodes.len() >= 2 {
                vessels.push(vessel);
            }
        }
        let index = NodeIndex::build(&vessels);
        VesselTree { vessels, index }
    }

    /// Distance from `point` to the nearest vessel wall in millimetres (negative inside a vessel),
    /// saturating at 0.5 mm when no vessel is that close.
    pub fn clearance(&self, point: RetinaPoint) -> f64 {
        self.index.clearance(&self.vessels, point)
    }

    /// Total number of centreline nodes, a measure of the tree's size.
    pub fn node_count(&self) -> usize {
        self.vessels.iter().map(|vessel| vessel.nodes.len()).sum()
    }
}

/// Walks one vessel to its end, queueing its branches.
fn grow(
    mut walker: Walker,
    anatomy: &Anatomy,
    rng: &mut SynthRng,
    queue: &mut VecDeque<Walker>,
    occupancy: &mut Occupancy,
    id: u32,
) -> Vessel {
    let mut nodes = vec![VesselNode {
        point: walker.point,
        radius: walker.radius,
    }];
    let taper = 0.025 + 0.0016 / walker.radius.max(MIN_RADIUS_MM);
    let mut arc = 0.0f64;
    let mut since_branch = 0.0f64;
    let max_steps = 2_000;
    for _ in 0..max_steps {
        // Steering towards the guide direction plus smooth tortuosity and a little jitter.
        let desired = match walker.guide {
            Guide::Arcade {
                along,
                across,
                sign,
            } => {
                // Tangent of the concentric ellipse through the walker, moving away from the disc.
                let u = anatomy.disc_centre.x - walker.point.x;
                let v = ((walker.point.y - anatomy.disc_centre.y) * sign).max(0.02);
                let theta = (v / across).atan2((u - along) / along);
                let du = along * theta.sin();
                let dv = -across * theta.cos();
                (sign * dv).atan2(-du)
            }
            Guide::Heading(heading) => heading,
            Guide::Toward(target) => (target.y - walker.point.y).atan2(target.x - walker.point.x),
        };
        let pull = wrap_angle(desired - walker.heading) * walker.steer;
        let tortuosity: f64 = walker
            .wiggle
            .iter()
            .map(|(amplitude, wavenumber, phase)| amplitude * (wavenumber * arc + phase).sin())
            .sum();
        walker.heading = wrap_angle(
            walker.heading + (pull + tortuosity) * STEP_MM + 0.04 * normal(rng) * STEP_MM.sqrt(),
        );
        walker.point = RetinaPoint::new(
            walker.point.x + STEP_MM * walker.heading.cos(),
            walker.point.y + STEP_MM * walker.heading.sin(),
        );
        walker.radius *= (-taper * STEP_MM).exp();
        arc += STEP_MM;
        since_branch += STEP_MM;
        nodes.push(VesselNode {
            point: walker.point,
            radius: walker.radius,
        });

        let eccentricity = walker.point.eccentricity();
        let in_disc = anatomy.disc_distance(walker.point) < 0.9;
        // Small vessels end where they meet another vessel of their kind instead of crossing it,
        // which reads as a junction; trunks and first branches may cross, as arteries and veins do.
        let blocked = walker.generation >= 2
            && arc > 0.3
            && occupancy.taken_by_other(walker.point, walker.kind, id);
        occupancy.mark(walker.point, walker.kind, id);
        let crossed_raphe =
            walker.generation > 0 && walker.point.x < -0.3 && walker.point.y * walker.side < -0.03;
        let ended = walker.radius < MIN_RADIUS_MM
            || blocked
            || crossed_raphe
            || eccentricity < FAZ_RADIUS_MM + walker.radius * 4.0
            || eccentricity > MAX_ECCENTRICITY_MM
            || (in_disc && !walker.from_disc);
        if ended {
            break;
        }
        if anatomy.disc_distance(walker.point) > 1.2 {
            walker.from_disc = false;
        }
        if since_branch >= walker.next_branch && walker.generation < 8 {
            since_branch = 0.0;
            walker.next_branch = branch_interval(rng, walker.radius);
            if let Some(child) = branch(&mut walker, rng) {
                queue.push_back(child);
            }
        }
    }
    Vessel {
        kind: walker.kind,
        generation: walker.generation,
        nodes,
    }
}

/// Which vessel occupies each small cell of the retina, per vessel kind, while the tree grows.
struct Occupancy {
    cells: Vec<[u32; 2]>,
}

impl Occupancy {
    /// Cell size in millimetres: about a small vessel's width plus a gap.
    const CELL_MM: f64 = 0.05;
    /// Cells per side, covering ±11 mm around the fovea.
    const SIDE: usize = 440;

    fn new() -> Occupancy {
        Occupancy {
            cells: vec![[0; 2]; Self::SIDE * Self::SIDE],
        }
    }

    fn index(point: RetinaPoint) -> Option<usize> {
        let half = Self::CELL_MM * Self::SIDE as f64 / 2.0;
        let column = ((point.x + half) / Self::CELL_MM).floor();
        let row = ((point.y + half) / Self::CELL_MM).floor();
        let side = Self::SIDE as f64;
        if !(0.0..side).contains(&column) || !(0.0..side).contains(&row) {
            return None;
        }
        Some(row as usize * Self::SIDE + column as usize)
    }

    fn slot(kind: VesselKind) -> usize {
        match kind {
            VesselKind::Artery => 0,
            VesselKind::Vein => 1,
        }
    }

    fn taken_by_other(&self, point: RetinaPoint, kind: VesselKind, id: u32) -> bool {
        Self::index(point).is_some_and(|index| {
            let owner = self.cells[index][Self::slot(kind)];
            owner != 0 && owner != id
        })
    }

    fn mark(&mut self, point: RetinaPoint, kind: VesselKind, id: u32) {
        if let Some(index) = Self::index(point) {
            let owner = &mut self.cells[index][Self::slot(kind)];
            if *owner == 0 {
                *owner = id;
            }
        }
    }
}

/// Splits a branch off `parent`, narrowing the parent as Murray's law requires.
fn branch(parent: &mut Walker, rng: &mut SynthRng) -> Option<Walker> {
    let fraction = if parent.generation == 0 {
        uniform(rng, 0.4, 0.72)
    } else {
        uniform(rng, 0.55, 0.85)
    };
    let child_radius = parent.radius * fraction;
    if child_radius < MIN_RADIUS_MM * 1.3 {
        return None;
    }
    // Murray's law: r_parent³ = r_continuing³ + r_child³.
    parent.radius = (parent.radius.powi(3) - child_radius.powi(3)).cbrt();
    let angle = uniform(rng, 0.6, 1.25);
    let to_fovea = (-parent.point.y).atan2(-parent.point.x);
    let left = wrap_angle(parent.heading + angle);
    let right = wrap_angle(parent.heading - angle);
    let left_is_inward = wrap_angle(left - to_fovea).abs() < wrap_angle(right - to_fovea).abs();
    let near_macula = parent.point.eccentricity() < 5.0;
    let inward = near_macula && chance(rng, 0.4);
    let heading = match (inward, left_is_inward) {
        (true, true) | (false, false) => left,
        _ => right,
    };
    // The parent bends slightly away from its branch.
    parent.heading = wrap_angle(parent.heading - 0.25 * wrap_angle(heading - parent.heading));
    let guide = if inward {
        Guide::Toward(RetinaPoint::new(0.0, 0.0))
    } else {
        Guide::Heading(heading)
    };
    Some(Walker {
        kind: parent.kind,
        generation: parent.generation + 1,
        point: parent.point,
        heading,
        radius: child_radius,
        guide,
        steer: if inward { 0.7 } else { 0.35 },
        wiggle: wiggle(rng, parent.kind, child_radius),
        next_branch: branch_interval(rng, child_radius),
        from_disc: false,
        side: parent.side,
    })
}

/// A coarse grid over the retina listing the nodes in each cell, for fast clearance queries.
#[derive(Debug, Clone, PartialEq)]
struct NodeIndex {
    cells: Vec<Vec<(u32, u32)>>,
}

impl NodeIndex {
    /// Cell size of the grid, in millimetres; also the saturation of [`VesselTree::clearance`].
    const CELL_MM: f64 = 0.5;
    /// Cells per side; the grid covers ±`HALF_SPAN` millimetres around the fovea.
    const SIDE: usize = 44;
    const HALF_SPAN: f64 = Self::CELL_MM * Self::SIDE as f64 / 2.0;

    fn cell_of(point: RetinaPoint) -> Option<(usize, usize)> {
        let column = ((point.x + Self::HALF_SPAN) / Self::CELL_MM).floor();
        let row = ((point.y + Self::HALF_SPAN) / Self::CELL_MM).floor();
        let side = Self::SIDE as f64;
        if !(0.0..side).contains(&column) || !(0.0..side).contains(&row) {
            return None;
        }
        Some((column as usize, row as usize))
    }

    fn build(vessels: &[Vessel]) -> NodeIndex {
        let mut cells = vec![Vec::new(); Self::SIDE * Self::SIDE];
        for (vessel_index, vessel) in vessels.iter().enumerate() {
            for (node_index, node) in vessel.nodes.iter().enumerate() {
                if let Some((column, row)) = Self::cell_of(node.point) {
                    cells[row * Self::SIDE + column].push((vessel_index as u32, node_index as u32));
                }
            }
        }
        NodeIndex { cells }
    }

    fn clearance(&self, vessels: &[Vessel], point: RetinaPoint) -> f64 {
        let mut best = Self::CELL_MM;
        let Some((column, row)) = Self::cell_of(point) else {
            return best;
        };
        for neighbour_row in row.saturating_sub(1)..=(row + 1).min(Self::SIDE - 1) {
            for neighbour_column in column.saturating_sub(1)..=(column + 1).min(Self::SIDE - 1) {
                for &(vessel_index, node_index) in
                    &self.cells[neighbour_row * Self::SIDE + neighbour_column]
                {
                    let Some(node) = vessels
                        .get(vessel_index as usize)
                        .and_then(|vessel| vessel.nodes.get(node_index as usize))
                    else {
                        continue;
                    };
                    best = best.min(node.point.distance(point) - node.radius);
                }
            }
        }
        best
    }
}

/// Vessel density maps of one image, row-major, values in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct VesselMaps {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Arterial blood along the line of sight (0 = none, 1 = a full-width vessel).
    pub artery: Vec<f32>,
    /// Venous blood along the line of sight.
    pub vein: Vec<f32>,
    /// Central light reflex of the vessel wall (strong in arteries, faint in veins).
    pub reflex: Vec<f32>,
}

impl VesselMaps {
    /// Empty maps of the given size.
    pub fn empty(width: usize, height: usize) -> VesselMaps {
        VesselMaps {
            width,
            height,
            artery: vec![0.0; width * height],
            vein: vec![0.0; width * height],
            reflex: vec![0.0; width * height],
        }
    }

    /// Total blood density (artery or vein) at pixel index `index`.
    pub fn blood(&self, index: usize) -> f32 {
        self.artery[index].max(self.vein[index])
    }

    /// Blood density at fractional pixel coordinates, bilinearly interpolated; 0 outside.
    pub fn sample_blood(&self, x: f64, y: f64) -> f32 {
        if !(x >= 0.0 && y >= 0.0) {
            return 0.0;
        }
        let x0 = x.floor() as usize;
        let y0 = y.floor() as usize;
        if x0 + 1 >= self.width || y0 + 1 >= self.height {
            return 0.0;
        }
        let wx = (x - x0 as f64) as f32;
        let wy = (y - y0 as f64) as f32;
        let at = |column: usize, row: usize| self.blood(row * self.width + column);
        let top = at(x0, y0) + (at(x0 + 1, y0) - at(x0, y0)) * wx;
        let bottom = at(x0, y0 + 1) + (at(x0 + 1, y0 + 1) - at(x0, y0 + 1)) * wx;
        top + (bottom - top) * wy
    }
}

/// Rasterizes the tree into density maps for `frame`.
///
/// Each pair of consecutive nodes is drawn as an anti-aliased tapered capsule, blended with `max`
/// so joints and overlaps leave no seams.
pub fn rasterize(tree: &VesselTree, frame: &ImageFrame) -> VesselMaps {
    let width = frame.width as usize;
    let height = frame.height as usize;
    let mut maps = VesselMaps::empty(width, height);
    for vessel in &tree.vessels {
        let reflex_strength = match vessel.kind {
            VesselKind::Artery => 1.0f32,
            VesselKind::Vein => 0.35,
        };
        for pair in vessel.nodes.windows(2) {
            let (x0, y0) = frame.to_px(pair[0].point);
            let (x1, y1) = frame.to_px(pair[1].point);
            let r0 = pair[0].radius / frame.mm_per_px;
            let r1 = pair[1].radius / frame.mm_per_px;
            draw_capsule(
                &mut maps,
                Stroke {
                    kind: vessel.kind,
                    reflex_strength,
                    opacity: opacity(pair[0].radius) as f32,
                },
                [x0, y0, x1, y1],
                [r0, r1],
            );
        }
    }
    maps
}

/// How dark a vessel of `radius_mm` looks at its centre: blood absorbs along the light path, so
/// thin vessels are paler.
fn opacity(radius_mm: f64) -> f64 {
    (radius_mm / 0.045).min(1.0).powf(0.6)
}

/// Style of one drawn vessel segment.
struct Stroke {
    kind: VesselKind,
    reflex_strength: f32,
    opacity: f32,
}

fn draw_capsule(
    maps: &mut VesselMaps,
    stroke: Stroke,
    [x0, y0, x1, y1]: [f64; 4],
    [r0, r1]: [f64; 2],
) {
    let Stroke {
        kind,
        reflex_strength,
        opacity,
    } = stroke;
    let reach = r0.max(r1).max(0.8) + 1.5;
    let min_x = (x0.min(x1) - reach).floor().max(0.0);
    let max_x = (x0.max(x1) + reach).ceil().min(maps.width as f64 - 1.0);
    let min_y = (y0.min(y1) - reach).floor().max(0.0);
    let max_y = (y0.max(y1) + reach).ceil().min(maps.height as f64 - 1.0);
    if min_x > max_x || min_y > max_y {
        return;
    }
    let dx = x1 - x0;
    let dy = y1 - y0;
    let length_sq = (dx * dx + dy * dy).max(1e-12);
    let width = maps.width;
    let target = match kind {
        VesselKind::Artery => &mut maps.artery,
        VesselKind::Vein => &mut maps.vein,
    };
    for row in min_y as usize..=max_y as usize {
        let py = row as f64;
        for column in min_x as usize..=max_x as usize {
            let px = column as f64;
            let t = (((px - x0) * dx + (py - y0) * dy) / length_sq).clamp(0.0, 1.0);
            let offset_x = px - x0 - t * dx;
            let offset_y = py - y0 - t * dy;
            let distance_sq = offset_x * offset_x + offset_y * offset_y;
            let radius = r0 + (r1 - r0) * t;
            let outer = radius.max(0.8) + 0.5;
            if distance_sq >= outer * outer {
                continue;
            }
            let distance = distance_sq.sqrt();
            // Sub-pixel vessels are drawn one pixel wide with proportionally less blood.
            let strength = (radius / 0.8).min(1.0);
            let drawn = radius.max(0.8);
            let edge = (drawn + 0.5 - distance).clamp(0.0, 1.0);
            if edge <= 0.0 {
                continue;
            }
            let across = (distance / (drawn + 0.5)).min(1.0);
            let density =
                (strength * edge * (0.7 + 0.3 * (1.0 - across * across).sqrt())) as f32 * opacity;
            let index = row * width + column;
            if density > target[index] {
                target[index] = density;
            }
            if drawn > 1.5 {
                let core = 0.2 * drawn;
                let reflex = (reflex_strength as f64
                    * (-(distance / core).powi(2)).exp()
                    * ((drawn - 1.5) / 2.0).min(1.0)) as f32;
                if reflex > maps.reflex[index] {
                    maps.reflex[index] = reflex;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng::stream;
    use readroom_domain::manifest::Eye;

    fn tree(seed: u64) -> (Anatomy, VesselTree) {
        let anatomy = Anatomy::generate(&mut stream(seed, &["anatomy"]), 0.3);
        let tree = VesselTree::generate(&anatomy, &mut stream(seed, &["vessels"]));
        (anatomy, tree)
    }

    #[test]
    fn tree_is_deterministic_and_branches() {
        let (_, first) = tree(5);
        let (_, second) = tree(5);
        assert_eq!(first, second);
        assert!(first.vessels.len() > 40, "{} vessels", first.vessels.len());
        assert!(first.node_count() > 2_000);
        let veins = first
            .vessels
            .iter()
            .filter(|v| v.kind == VesselKind::Vein)
            .count();
        assert!(veins > 10 && veins < first.vessels.len() - 10);
    }

    #[test]
    fn fovea_stays_avascular() {
        let (_, tree) = tree(6);
        for vessel in &tree.vessels {
            for node in &vessel.nodes {
                assert!(node.point.eccentricity() > FAZ_RADIUS_MM - 0.05);
            }
        }
        assert!(tree.clearance(RetinaPoint::new(0.0, 0.0)) > 0.2);
    }

    #[test]
    fn trunks_are_drawn_at_the_disc() {
        let (anatomy, tree) = tree(7);
        let frame = ImageFrame::fundus(512, &anatomy, Eye::Od);
        let maps = rasterize(&tree, &frame);
        let (x, y) = frame.to_px(anatomy.disc_centre);
        let mut blood = 0.0;
        for row in (y as usize - 20)..(y as usize + 20) {
            for column in (x as usize - 20)..(x as usize + 20) {
                blood += maps.blood(row * maps.width + column);
            }
        }
        assert!(blood > 50.0, "blood near disc {blood}");
    }
}
