//! De-identification rules: what in a bundle counts as patient identity.
//!
//! The ingest gate extracts raw strings (DICOM attributes, EXIF/XMP/IPTC/PNG text items, file
//! names, manifest fields) and asks these functions whether each is identifying. Every positive
//! answer becomes a [`Finding`]; a bundle with any finding is refused and nothing of it is stored.
//!
//! The rules follow DICOM PS3.15 Annex E (the basic application level confidentiality profile)
//! for DICOM, and a conservative reading of it for other formats: names, identifiers, dates and
//! locations are refused, free text is scanned for things that look like them. The only values
//! allowed in identity attributes are empty ones and the manifest's own pseudonyms.
//!
//! What the heuristics cannot see: a plain Latin-script name written in free text or a file name
//! ("john_smith.jpg") without any other marker. Those need a dictionary of names, which readroom
//! does not ship; the gate therefore refuses all free text in name-bearing metadata fields.

use crate::manifest::{Manifest, MeasurementValue};

/// One identifying item found in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The bundle file it was found in (`manifest.json` for manifest fields).
    pub file: String,
    /// The field: a DICOM keyword with its tag, a metadata key with its container, or a manifest path.
    pub field: String,
    /// Why it is refused. Never contains the offending value itself, which may be PHI.
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.field, self.reason)
    }
}

/// The pseudonyms a bundle may carry in identity fields (subject, visit, prior visit, study).
#[derive(Debug, Clone, Default)]
pub struct Pseudonyms {
    allowed: Vec<String>,
}

impl Pseudonyms {
    /// The pseudonyms declared by a manifest.
    pub fn of(manifest: &Manifest) -> Pseudonyms {
        let mut allowed = vec![
            manifest.subject.clone(),
            manifest.visit.clone(),
            manifest.study.clone(),
        ];
        allowed.extend(manifest.prior_visit.clone());
        allowed.retain(|p| !p.is_empty());
        Pseudonyms { allowed }
    }

    /// Whether `value` is empty or one of the pseudonyms (ignoring case, surrounding blanks and
    /// DICOM person-name separators, so `S0001^^^^` matches `S0001`).
    pub fn allows(&self, value: &str) -> bool {
        let value = value.trim().trim_matches(|c| c == '^' || c == '=').trim();
        value.is_empty() || self.allowed.iter().any(|p| p.eq_ignore_ascii_case(value))
    }

    /// Removes every pseudonym from `text`, so heuristics do not fire on them.
    fn strip<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let mut out = std::borrow::Cow::Borrowed(text);
        for pseudonym in &self.allowed {
            if out.contains(pseudonym.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(pseudonym.as_str(), " "));
            }
        }
        out
    }
}

/// Options of the gate a study may set.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeidPolicy {
    /// Whether DICOM dates and times are accepted because the study's exporter shifts them.
    pub allow_shifted_dates: bool,
}

/// A DICOM attribute as extracted from a file, for [`check_dicom_attribute`].
#[derive(Debug, Clone, Copy)]
pub struct DicomAttr<'a> {
    /// Group and element.
    pub tag: (u16, u16),
    /// Dictionary keyword, or empty for private and unknown tags.
    pub keyword: &'a str,
    /// Value representation (`PN`, `DA`, `LO`, `SQ` ...).
    pub vr: &'a str,
    /// The value in string form (multiple values separated by `\`).
    pub value: &'a str,
}

/// Attributes of the PS3.15 Annex E basic profile that must be empty or a pseudonym.
/// UIDs are not listed: they are needed for DICOM validity and carry no identity when the
/// exporter replaced them, which the gate cannot tell from the value.
pub const BASIC_PROFILE: &[((u16, u16), &str)] = &[
    ((0x0008, 0x0020), "StudyDate"),
    ((0x0008, 0x0021), "SeriesDate"),
    ((0x0008, 0x0022), "AcquisitionDate"),
    ((0x0008, 0x0023), "ContentDate"),
    ((0x0008, 0x0024), "OverlayDate"),
    ((0x0008, 0x0025), "CurveDate"),
    ((0x0008, 0x002A), "AcquisitionDateTime"),
    ((0x0008, 0x0030), "StudyTime"),
    ((0x0008, 0x0031), "SeriesTime"),
    ((0x0008, 0x0032), "AcquisitionTime"),
    ((0x0008, 0x0033), "ContentTime"),
    ((0x0008, 0x0050), "AccessionNumber"),
    ((0x0008, 0x0080), "InstitutionName"),
    ((0x0008, 0x0081), "InstitutionAddress"),
    ((0x0008, 0x0082), "InstitutionCodeSequence"),
    ((0x0008, 0x0090), "ReferringPhysicianName"),
    ((0x0008, 0x0092), "ReferringPhysicianAddress"),
    ((0x0008, 0x0094), "ReferringPhysicianTelephoneNumbers"),
    ((0x0008, 0x0096), "ReferringPhysicianIdentificationSequence"),
    ((0x0008, 0x1010), "StationName"),
    ((0x0008, 0x1030), "StudyDescription"),
    ((0x0008, 0x103E), "SeriesDescription"),
    ((0x0008, 0x1040), "InstitutionalDepartmentName"),
    ((0x0008, 0x1048), "PhysiciansOfRecord"),
    ((0x0008, 0x1050), "PerformingPhysicianName"),
    ((0x0008, 0x1060), "NameOfPhysiciansReadingStudy"),
    ((0x0008, 0x1070), "OperatorsName"),
    ((0x0008, 0x1080), "AdmittingDiagnosesDescription"),
    ((0x0008, 0x2111), "DerivationDescription"),
    ((0x0010, 0x0010), "PatientName"),
    ((0x0010, 0x0020), "PatientID"),
    ((0x0010, 0x0021), "IssuerOfPatientID"),
    ((0x0010, 0x0030), "PatientBirthDate"),
    ((0x0010, 0x0032), "PatientBirthTime"),
    ((0x0010, 0x0040), "PatientSex"),
    ((0x0010, 0x0050), "PatientInsurancePlanCodeSequence"),
    ((0x0010, 0x1000), "OtherPatientIDs"),
    ((0x0010, 0x1001), "OtherPatientNames"),
    ((0x0010, 0x1002), "OtherPatientIDsSequence"),
    ((0x0010, 0x1005), "PatientBirthName"),
    ((0x0010, 0x1010), "PatientAge"),
    ((0x0010, 0x1020), "PatientSize"),
    ((0x0010, 0x1030), "PatientWeight"),
    ((0x0010, 0x1040), "PatientAddress"),
    ((0x0010, 0x1060), "PatientMotherBirthName"),
    ((0x0010, 0x1080), "MilitaryRank"),
    ((0x0010, 0x1081), "BranchOfService"),
    ((0x0010, 0x1090), "MedicalRecordLocator"),
    ((0x0010, 0x2000), "MedicalAlerts"),
    ((0x0010, 0x2110), "Allergies"),
    ((0x0010, 0x2150), "CountryOfResidence"),
    ((0x0010, 0x2152), "RegionOfResidence"),
    ((0x0010, 0x2154), "PatientTelephoneNumbers"),
    ((0x0010, 0x2160), "EthnicGroup"),
    ((0x0010, 0x2180), "Occupation"),
    ((0x0010, 0x21A0), "SmokingStatus"),
    ((0x0010, 0x21B0), "AdditionalPatientHistory"),
    ((0x0010, 0x21C0), "PregnancyStatus"),
    ((0x0010, 0x21F0), "PatientReligiousPreference"),
    ((0x0010, 0x4000), "PatientComments"),
    ((0x0018, 0x1000), "DeviceSerialNumber"),
    ((0x0018, 0x1030), "ProtocolName"),
    ((0x0020, 0x0010), "StudyID"),
    ((0x0020, 0x4000), "ImageComments"),
    ((0x0032, 0x1032), "RequestingPhysician"),
    ((0x0032, 0x1060), "RequestedProcedureDescription"),
    ((0x0038, 0x0010), "AdmissionID"),
    ((0x0038, 0x0300), "CurrentPatientLocation"),
    ((0x0038, 0x0400), "PatientInstitutionResidence"),
    ((0x0038, 0x0500), "PatientState"),
    ((0x0040, 0x0006), "ScheduledPerformingPhysicianName"),
    ((0x0040, 0x0244), "PerformedProcedureStepStartDate"),
    ((0x0040, 0x0245), "PerformedProcedureStepStartTime"),
    ((0x0040, 0x0253), "PerformedProcedureStepID"),
    ((0x0040, 0x0254), "PerformedProcedureStepDescription"),
    ((0x0040, 0x1001), "RequestedProcedureID"),
    ((0x0040, 0x2016), "PlacerOrderNumberImagingServiceRequest"),
    ((0x0040, 0x2017), "FillerOrderNumberImagingServiceRequest"),
    ((0x0040, 0xA123), "PersonName"),
    ((0x4008, 0x0114), "PhysicianApprovingInterpretation"),
];

/// The (0028,0301) BurnedInAnnotation attribute.
const BURNED_IN_ANNOTATION: (u16, u16) = (0x0028, 0x0301);

/// Checks one DICOM attribute. Private tags (odd group) are always refused, because their
/// content is vendor-defined and may hold anything; BurnedInAnnotation `YES` is refused because
/// the pixels themselves then carry identity.
pub fn check_dicom_attribute(
    file: &str,
    attr: DicomAttr<'_>,
    pseudonyms: &Pseudonyms,
    policy: DeidPolicy,
) -> Option<Finding> {
    let (group, element) = attr.tag;
    let field = if attr.keyword.is_empty() {
        format!("({group:04X},{element:04X})")
    } else {
        format!("{} ({group:04X},{element:04X})", attr.keyword)
    };
    let finding = |reason: &str| {
        Some(Finding {
            file: file.to_owned(),
            field: field.clone(),
            reason: reason.to_owned(),
        })
    };
    if group % 2 == 1 {
        return finding("private tags are not allowed (their content is vendor-defined)");
    }
    if attr.tag == BURNED_IN_ANNOTATION {
        if attr.value.trim().eq_ignore_ascii_case("YES") {
            return finding("BurnedInAnnotation is YES: the pixels carry identifying text");
        }
        return None;
    }
    let is_date_time = matches!(attr.vr, "DA" | "DT" | "TM");
    let listed = BASIC_PROFILE.iter().any(|(tag, _)| *tag == attr.tag);
    if listed {
        if attr.vr == "SQ" {
            let empty = attr.value.trim().is_empty() || attr.value.trim() == "0";
            if empty {
                return None;
            }
            return finding("identity sequence of the basic de-identification profile is present");
        }
        if is_date_time && policy.allow_shifted_dates {
            return None;
        }
        if pseudonyms.allows(attr.value) {
            return None;
        }
        if is_date_time {
            return finding(
                "dates and times are not allowed (the study does not allow shifted dates)",
            );
        }
        return finding("must be empty or the bundle's pseudonym (PS3.15 basic profile)");
    }
    if is_date_time && !attr.value.trim().is_empty() && !policy.allow_shifted_dates {
        return finding("dates and times are not allowed (the study does not allow shifted dates)");
    }
    if attr.vr == "PN" && !pseudonyms.allows(attr.value) {
        return finding("person names are not allowed");
    }
    if matches!(attr.vr, "LO" | "SH" | "ST" | "LT" | "UT" | "UC") {
        return identifying_pattern(&pseudonyms.strip(attr.value)).and_then(finding);
    }
    None
}

/// How a metadata key of an image container is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyClass {
    /// Any value is identifying (GPS, names, serial numbers).
    Always,
    /// A date or time: identifying when not empty.
    Date,
    /// Free text: identifying when it looks like a name, id or date.
    FreeText,
}

fn classify_metadata_key(key: &str) -> KeyClass {
    let lower = key.to_ascii_lowercase();
    // Strip XMP namespace prefixes and IPTC record numbers ("2:80 By-line" → "by-line").
    let local = lower
        .rsplit([':', ' '])
        .next()
        .unwrap_or(lower.as_str())
        .to_owned();
    const ALWAYS: &[&str] = &[
        "artist",
        "author",
        "creator",
        "by-line",
        "byline",
        "by-line title",
        "cameraownername",
        "ownername",
        "bodyserialnumber",
        "lensserialnumber",
        "serialnumber",
        "imageuniqueid",
        "xpauthor",
        "copyright",
        "rights",
        "contact",
        "writer-editor",
        "credit",
        "source",
        "city",
        "sub-location",
        "province-state",
        "country",
        "location",
        "hostcomputer",
        "documentname",
        "person",
        "personinimage",
        "patient",
        "patientname",
        "patientid",
    ];
    if lower.starts_with("gps") || local.starts_with("gps") || lower.contains("exif:gps") {
        return KeyClass::Always;
    }
    if ALWAYS.contains(&local.as_str()) {
        return KeyClass::Always;
    }
    if local.contains("date") || local.contains("time") || local == "creation time" {
        return KeyClass::Date;
    }
    KeyClass::FreeText
}

/// Checks one metadata item of an image file (EXIF, XMP, IPTC, PNG text, TIFF tag, JPEG comment).
///
/// GPS, names, owners and serial numbers are refused whatever their value; dates are refused
/// when not empty; other text is refused when it looks identifying.
pub fn check_metadata(
    file: &str,
    container: &str,
    key: &str,
    value: &str,
    pseudonyms: &Pseudonyms,
) -> Option<Finding> {
    let value = value.trim().trim_matches('\0').trim();
    if value.is_empty() {
        return None;
    }
    let finding = |reason: &str| {
        Some(Finding {
            file: file.to_owned(),
            field: format!("{container} {key}"),
            reason: reason.to_owned(),
        })
    };
    match classify_metadata_key(key) {
        KeyClass::Always if key.to_ascii_lowercase().contains("gps") => {
            finding("GPS location metadata is not allowed")
        }
        KeyClass::Always if pseudonyms.allows(value) => None,
        KeyClass::Always => {
            finding("names, owners and serial numbers are not allowed in image metadata")
        }
        KeyClass::Date => finding("dates are not allowed in image metadata"),
        KeyClass::FreeText => identifying_pattern(&pseudonyms.strip(value)).and_then(finding),
    }
}

/// Checks a bundle file name for identifying strings (dates, long numbers, names, e-mails...).
pub fn check_file_name(path: &str, pseudonyms: &Pseudonyms) -> Option<Finding> {
    identifying_pattern(&pseudonyms.strip(path)).map(|what| Finding {
        file: path.to_owned(),
        field: "file name".to_owned(),
        reason: what.to_owned(),
    })
}

/// Checks every string of a manifest: the pseudonyms themselves must not look like dates,
/// names, e-mails or national ids, and exam ids, device names and text values must not carry
/// identifying strings.
pub fn check_manifest(manifest: &Manifest) -> Vec<Finding> {
    let pseudonyms = Pseudonyms::of(manifest);
    let mut findings = Vec::new();
    // Pseudonyms may be long numbers (S000123), but not dates, e-mails or registration numbers.
    for (field, value) in [
        ("subject", Some(&manifest.subject)),
        ("visit", Some(&manifest.visit)),
        ("prior_visit", manifest.prior_visit.as_ref()),
    ] {
        if let Some(value) = value
            && let Some(what) = identifying_pattern_strict(value)
        {
            findings.push(manifest_finding(field.to_owned(), what));
        }
    }
    for (idx, exam) in manifest.exams.iter().enumerate() {
        let mut texts: Vec<(String, &str)> = vec![(format!("exams[{idx}].id"), &exam.id)];
        if let Some(device) = &exam.device {
            texts.push((format!("exams[{idx}].device"), device));
        }
        for (key, value) in exam.values.iter().flatten() {
            texts.push((format!("exams[{idx}].values key"), key));
            if let MeasurementValue::Text(text) = value {
                texts.push((format!("exams[{idx}].values.{key}"), text));
            }
        }
        for (field, text) in texts {
            if let Some(what) = identifying_pattern(&pseudonyms.strip(text)) {
                findings.push(manifest_finding(field, what));
            }
        }
    }
    findings
}

fn manifest_finding(field: String, reason: &str) -> Finding {
    Finding {
        file: crate::manifest::MANIFEST_FILE.to_owned(),
        field,
        reason: reason.to_owned(),
    }
}

/// Like [`identifying_pattern`] but without the long-number rule, for declared pseudonyms.
fn identifying_pattern_strict(text: &str) -> Option<&'static str> {
    match identifying_pattern(text) {
        Some(LONG_NUMBER) => None,
        other => other,
    }
}

const LONG_NUMBER: &str = "contains a long number (looks like a patient or record id)";

/// Returns what `text` looks like when it looks identifying: a date, an e-mail address, a phone
/// number, a Korean resident registration number, a long number (record id), a DICOM person
/// name, or a Korean personal name. `None` when nothing identifying is recognised.
pub fn identifying_pattern(text: &str) -> Option<&'static str> {
    if looks_like_email(text) {
        return Some("looks like an e-mail address");
    }
    if looks_like_rrn(text) {
        return Some("looks like a resident registration number");
    }
    if looks_like_date(text) {
        return Some("looks like a date");
    }
    if looks_like_phone(text) {
        return Some("looks like a phone number");
    }
    if longest_digit_run(text) >= 6 {
        return Some(LONG_NUMBER);
    }
    if looks_like_dicom_person_name(text) {
        return Some("looks like a person name");
    }
    if looks_like_korean_name(text) {
        return Some("looks like a Korean personal name");
    }
    if looks_like_labelled_identity(text) {
        return Some("labels a name or patient id");
    }
    None
}

fn looks_like_email(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
        .any(|token| {
            let Some((local, domain)) = token.split_once('@') else {
                return false;
            };
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

/// Digit runs of `text`, with the separators between them, as (digits, separator-after).
fn digit_groups(text: &str) -> Vec<(String, Option<char>)> {
    let mut groups: Vec<(String, Option<char>)> = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            current.push(c);
        } else {
            if !current.is_empty() {
                groups.push((std::mem::take(&mut current), Some(c)));
            } else if let Some(last) = groups.last_mut()
                && last.1.is_some()
            {
                // Two separators in a row end the group chain.
                last.1 = None;
            }
        }
    }
    if !current.is_empty() {
        groups.push((current, None));
    }
    groups
}

fn longest_digit_run(text: &str) -> usize {
    digit_groups(text)
        .iter()
        .map(|(digits, _)| digits.len())
        .max()
        .unwrap_or(0)
}

fn looks_like_rrn(text: &str) -> bool {
    let groups = digit_groups(text);
    let compact = groups.iter().any(|(d, _)| {
        d.len() == 13 && plausible_yymmdd(&d[..6]) && matches!(d.as_bytes()[6], b'1'..=b'8')
    });
    let split = groups.windows(2).any(|w| {
        w[0].0.len() == 6
            && w[0].1 == Some('-')
            && w[1].0.len() == 7
            && plausible_yymmdd(&w[0].0)
            && matches!(w[1].0.as_bytes()[0], b'1'..=b'8')
    });
    compact || split
}

fn plausible_yymmdd(digits: &str) -> bool {
    let month: u32 = digits[2..4].parse().unwrap_or(0);
    let day: u32 = digits[4..6].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn plausible_year(digits: &str) -> bool {
    digits.len() == 4 && (digits.starts_with("19") || digits.starts_with("20"))
}

fn plausible_month_day(month: &str, day: &str) -> bool {
    if month.len() > 2 || day.len() > 2 {
        return false;
    }
    let month: u32 = month.parse().unwrap_or(0);
    let day: u32 = day.parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn looks_like_date(text: &str) -> bool {
    let groups = digit_groups(text);
    // YYYYMMDD as one run.
    let compact = groups.iter().any(|(d, _)| {
        d.len() == 8 && plausible_year(&d[..4]) && plausible_month_day(&d[4..6], &d[6..8])
    });
    if compact {
        return true;
    }
    // Y-M-D, D-M-Y or M-D-Y with `-`, `/` or `.` separators.
    groups.windows(3).any(|w| {
        let separated = |sep: Option<char>| matches!(sep, Some('-' | '/' | '.'));
        if !(separated(w[0].1) && separated(w[1].1)) {
            return false;
        }
        let (a, b, c) = (&w[0].0, &w[1].0, &w[2].0);
        (plausible_year(a) && plausible_month_day(b, c))
            || (plausible_year(c) && (plausible_month_day(b, a) || plausible_month_day(a, b)))
    })
}

fn looks_like_phone(text: &str) -> bool {
    // Three or more digit groups joined by `-`, ` ` or `.` with 9 to 15 digits in all,
    // e.g. 010-1234-5678 or +82 2 123 4567.
    let groups = digit_groups(text);
    let mut idx = 0;
    while idx < groups.len() {
        let mut digits = groups[idx].0.len();
        let mut count = 1;
        let mut end = idx;
        while end + 1 < groups.len() && matches!(groups[end].1, Some('-' | ' ' | '.' | ')')) {
            end += 1;
            count += 1;
            digits += groups[end].0.len();
        }
        if count >= 3 && (9..=15).contains(&digits) {
            return true;
        }
        idx = end + 1;
    }
    false
}

fn looks_like_dicom_person_name(text: &str) -> bool {
    // DICOM PN components are separated by `^`: FAMILY^GIVEN.
    text.split('^')
        .filter(|part| part.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .count()
        >= 2
}

/// The most common Korean family names (covering over 90% of the population).
const KOREAN_SURNAMES: &str = "김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진나지엄채원천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부가복태목형피두감음빈동온호범좌팽승간상갈단견당";

fn looks_like_korean_name(text: &str) -> bool {
    let is_hangul = |c: char| ('\u{AC00}'..='\u{D7A3}').contains(&c);
    let mut token = String::new();
    let check = |token: &str| {
        let count = token.chars().count();
        // Two-syllable tokens are mostly ordinary words (안저, 사진); most names have three.
        count == 3
            && token
                .chars()
                .next()
                .is_some_and(|first| KOREAN_SURNAMES.contains(first))
    };
    for c in text.chars() {
        if is_hangul(c) {
            token.push(c);
        } else {
            if check(&token) {
                return true;
            }
            token.clear();
        }
    }
    check(&token)
}

fn looks_like_labelled_identity(text: &str) -> bool {
    let lower = text.to_lowercase();
    // Labels that introduce a name or an id; the bare word "patient" is too common in
    // de-identification notes ("patient identity removed") to refuse on its own.
    [
        "patient:",
        "patient name",
        "patient id",
        "patientname",
        "patientid",
        "name:",
        "name=",
        "mrn",
        "환자명",
        "환자 이름",
        "환자번호",
        "성명",
        "이름:",
    ]
    .iter()
    .any(|label| {
        // A label ending in a letter must end a word ("patient id", not "patient identity").
        lower.match_indices(label).any(|(at, _)| {
            let ends_in_letter = label.chars().last().is_some_and(char::is_alphabetic);
            let next = lower[at + label.len()..].chars().next();
            !ends_in_letter || !next.is_some_and(char::is_alphabetic)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudonyms() -> Pseudonyms {
        Pseudonyms {
            allowed: vec!["S000123".into(), "V1".into(), "EYE-2026".into()],
        }
    }

    #[test]
    fn patterns_catch_identifying_strings() {
        for (text, what) in [
            ("jane.doe@hospital.kr", "e-mail"),
            ("900101-1234567", "registration"),
            ("9001011234567", "registration"),
            ("2024-03-05", "date"),
            ("05/03/2024", "date"),
            ("scan_20240305.png", "date"),
            ("010-1234-5678", "phone"),
            ("+82 2 123 4567", "phone"),
            ("chart 12345678", "long number"),
            ("DOE^JANE", "person name"),
            ("김민수_fundus.jpg", "Korean"),
            ("Patient: X", "labels"),
        ] {
            let found = identifying_pattern(text);
            assert!(
                found.is_some_and(|f| f.contains(what)),
                "{text:?} → {found:?}, expected {what}"
            );
        }
    }

    #[test]
    fn patterns_leave_ordinary_strings_alone() {
        for text in [
            "fundus_od.jpg",
            "oct_os/000.png",
            "oct_os/127.png",
            "slo_od.png",
            "Topcon 3D OCT-2000",
            "iop_od_mmhg",
            "20/40",
            "안저 사진",
            "readroom synthetic data; patient identity removed",
            "v1.2.3",
            "fundus-od",
        ] {
            assert_eq!(identifying_pattern(text), None, "{text:?}");
        }
    }

    #[test]
    fn pseudonyms_are_allowed_in_identity_attributes() {
        let p = pseudonyms();
        let attr = |value| DicomAttr {
            tag: (0x0010, 0x0010),
            keyword: "PatientName",
            vr: "PN",
            value,
        };
        let policy = DeidPolicy::default();
        assert_eq!(
            check_dicom_attribute("a.dcm", attr("S000123^^^^"), &p, policy),
            None
        );
        assert_eq!(check_dicom_attribute("a.dcm", attr(""), &p, policy), None);
        let finding = check_dicom_attribute("a.dcm", attr("DOE^JANE"), &p, policy).unwrap();
        assert_eq!(finding.field, "PatientName (0010,0010)");
        assert!(
            !finding.reason.contains("DOE"),
            "a finding must not repeat the PHI"
        );
    }

    #[test]
    fn dicom_rules() {
        let p = pseudonyms();
        let policy = DeidPolicy::default();
        let check = |tag, keyword, vr, value| {
            check_dicom_attribute(
                "x.dcm",
                DicomAttr {
                    tag,
                    keyword,
                    vr,
                    value,
                },
                &p,
                policy,
            )
        };
        assert!(
            check((0x0009, 0x0010), "", "LO", "ACME").is_some(),
            "private"
        );
        assert!(check((0x0028, 0x0301), "BurnedInAnnotation", "CS", "YES").is_some());
        assert!(check((0x0028, 0x0301), "BurnedInAnnotation", "CS", "NO").is_none());
        assert!(check((0x0008, 0x0080), "InstitutionName", "LO", "Seoul Hospital").is_some());
        assert!(check((0x0008, 0x0020), "StudyDate", "DA", "20240305").is_some());
        assert!(check((0x0008, 0x0060), "Modality", "CS", "OPT").is_none());
        assert!(check((0x0020, 0x0060), "Laterality", "CS", "R").is_none());
        let shifted = check_dicom_attribute(
            "x.dcm",
            DicomAttr {
                tag: (0x0008, 0x0020),
                keyword: "StudyDate",
                vr: "DA",
                value: "20240305",
            },
            &p,
            DeidPolicy {
                allow_shifted_dates: true,
            },
        );
        assert_eq!(shifted, None);
    }

    #[test]
    fn metadata_rules() {
        let p = pseudonyms();
        assert!(check_metadata("f.jpg", "EXIF", "GPSLatitude", "37.5", &p).is_some());
        assert!(check_metadata("f.jpg", "EXIF", "Artist", "Jane Doe", &p).is_some());
        assert!(check_metadata("f.jpg", "XMP", "dc:creator", "Jane", &p).is_some());
        assert!(check_metadata("f.jpg", "IPTC", "2:80 By-line", "Jane", &p).is_some());
        assert!(check_metadata("f.jpg", "EXIF", "DateTimeOriginal", "2024:03:05", &p).is_some());
        assert!(check_metadata("f.png", "PNG tEXt", "Author", "Jane", &p).is_some());
        assert!(check_metadata("f.png", "PNG tEXt", "Software", "readroom", &p).is_none());
        assert!(check_metadata("f.jpg", "EXIF", "Make", "Topcon", &p).is_none());
        assert!(check_metadata("f.jpg", "EXIF", "Artist", "", &p).is_none());
        assert!(
            check_metadata("f.jpg", "JPEG COM", "comment", "Patient ID S000123", &p).is_some(),
            "labelled identity is refused even with a pseudonym"
        );
    }
}
