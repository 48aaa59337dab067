//! `BENCHMARKS.md`: each benchmark owns one `## ` section and replaces only that section, so
//! running one benchmark keeps the others' numbers.

use std::path::{Path, PathBuf};

/// The `p` quantile (0..=1) of `values`, nearest rank; NaN when there are none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The workspace's `BENCHMARKS.md`.
pub fn benchmarks_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md")
}

/// Replaces the section whose heading line is `heading` (e.g. `## Streaming (issue 4)`) with
/// `section` (which starts with that heading), or appends it; other sections stay as they are.
pub fn replace_section(document: &str, heading: &str, section: &str) -> String {
    let body = document.strip_prefix("# Benchmarks\n").unwrap_or(document);
    let mut sections: Vec<String> = Vec::new();
    for chunk in body.split("\n## ") {
        let chunk = chunk.trim_matches('\n');
        if chunk.is_empty() {
            continue;
        }
        let chunk = chunk.strip_prefix("## ").unwrap_or(chunk);
        sections.push(format!("## {chunk}"));
    }
    let section = section.trim_matches('\n').to_owned();
    match sections
        .iter()
        .position(|s| s.lines().next() == Some(heading))
    {
        Some(index) => sections[index] = section,
        None => sections.push(section),
    }
    format!("# Benchmarks\n\n{}\n", sections.join("\n\n"))
}

/// Writes `section` into `BENCHMARKS.md`.
pub fn write_section(heading: &str, section: &str) -> std::io::Result<PathBuf> {
    let path = benchmarks_file();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, replace_section(&current, heading, section))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_section_is_replaced_and_the_others_kept() {
        let doc = "# Benchmarks\n\n## A\n\nold a\n\n## B\n\nb\n";
        let out = replace_section(doc, "## A", "## A\n\nnew a\n");
        assert_eq!(out, "# Benchmarks\n\n## A\n\nnew a\n\n## B\n\nb\n");
        let out = replace_section(&out, "## C", "## C\n\nc");
        assert!(out.ends_with("## B\n\nb\n\n## C\n\nc\n"), "{out}");
        assert_eq!(
            replace_section("", "## A", "## A\n\nx"),
            "# Benchmarks\n\n## A\n\nx\n"
        );
    }
}
