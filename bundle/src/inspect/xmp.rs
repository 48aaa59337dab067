//! XMP packets, scanned tolerantly for simple property values.
//!
//! This is not an XML parser. It walks the tags of the packet, keeps a stack of open elements,
//! and reports
//! - the text inside an element under the nearest enclosing element that is a property (so
//!   `<dc:creator><rdf:Seq><rdf:li>Kim</rdf:li></rdf:Seq></dc:creator>` gives `dc:creator`),
//! - every qualified attribute (`photoshop:DateCreated="2024-01-01"`) except namespace
//!   declarations and RDF syntax attributes, and
//! - `rdf:resource="..."` under its element's name.
//!
//! Malformed markup never fails; whatever can be read is reported.

use super::{Ctx, InspectError};

/// The container name of XMP items.
pub(super) const CONTAINER: &str = "XMP";
/// Deepest element nesting followed; deeper elements are attributed to the deepest kept one.
const MAX_DEPTH: usize = 256;

/// RDF and XMP wrapper elements, which are structure rather than properties.
fn is_structural(name: &str) -> bool {
    matches!(
        name,
        "x:xmpmeta"
            | "x:xapmeta"
            | "rdf:RDF"
            | "rdf:Description"
            | "rdf:Seq"
            | "rdf:Bag"
            | "rdf:Alt"
            | "rdf:li"
            | "rdf:value"
    )
}

/// Attributes that are RDF or XML syntax rather than property values.
fn is_syntax_attribute(name: &str) -> bool {
    name.starts_with("xmlns")
        || name.starts_with("xml:")
        || matches!(
            name,
            "rdf:about" | "rdf:parseType" | "rdf:ID" | "rdf:nodeID" | "rdf:datatype"
        )
}

/// Scans an XMP packet and records its property values.
pub(super) fn collect(ctx: &mut Ctx<'_>, packet: &[u8]) -> Result<(), InspectError> {
    let packet = String::from_utf8_lossy(packet);
    let packet = packet.as_ref();
    let mut stack: Vec<&str> = Vec::new();
    let mut pos = 0;
    while pos < packet.len() {
        let Some(offset) = packet[pos..].find('<') else {
            push_text(ctx, &stack, &packet[pos..])?;
            break;
        };
        let tag_start = pos + offset;
        push_text(ctx, &stack, &packet[pos..tag_start])?;
        let rest = &packet[tag_start..];
        if rest.starts_with("<!--") {
            pos = skip_past(packet, tag_start, "-->");
        } else if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            push_value(ctx, &stack, &cdata[..end])?;
            pos = skip_past(packet, tag_start, "]]>");
        } else if rest.starts_with("<?") {
            pos = skip_past(packet, tag_start, "?>");
        } else if rest.starts_with("<!") {
            pos = skip_past(packet, tag_start, ">");
        } else if let Some(closing) = rest.strip_prefix("</") {
            let name_end = closing.find('>').unwrap_or(closing.len());
            let name = closing[..name_end].trim();
            if let Some(index) = stack.iter().rposition(|open| *open == name) {
                stack.truncate(index);
            }
            pos = skip_past(packet, tag_start, ">");
        } else {
            pos = open_tag(ctx, &mut stack, packet, tag_start)?;
        }
    }
    Ok(())
}

/// Reads `<name attr="value" ...>` at `start`; returns the position after it.
fn open_tag<'p>(
    ctx: &mut Ctx<'_>,
    stack: &mut Vec<&'p str>,
    packet: &'p str,
    start: usize,
) -> Result<usize, InspectError> {
    let bytes = packet.as_bytes();
    let mut pos = start + 1;
    let name_start = pos;
    while pos < bytes.len()
        && !bytes[pos].is_ascii_whitespace()
        && bytes[pos] != b'>'
        && bytes[pos] != b'/'
    {
        pos += 1;
    }
    let name = &packet[name_start..pos];
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() {
            return Ok(pos);
        }
        match bytes[pos] {
            b'>' => {
                if stack.len() < MAX_DEPTH {
                    stack.push(name);
                }
                return Ok(pos + 1);
            }
            b'/' => return Ok(skip_past(packet, pos, ">")),
            _ => {}
        }
        let attr_start = pos;
        while pos < bytes.len()
            && !matches!(bytes[pos], b'=' | b'>' | b'/')
            && !bytes[pos].is_ascii_whitespace()
        {
            pos += 1;
        }
        let attr_name = &packet[attr_start..pos];
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() || bytes[pos] != b'=' {
            // An attribute without a value: not XML, step over it.
            if attr_start == pos {
                pos += 1;
            }
            continue;
        }
        pos += 1;
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() {
            return Ok(pos);
        }
        let quote = bytes[pos];
        if quote != b'"' && quote != b'\'' {
            continue;
        }
        let value_start = pos + 1;
        let value_end = packet[value_start..]
            .find(char::from(quote))
            .map_or(packet.len(), |i| value_start + i);
        let value = &packet[value_start..value_end];
        pos = (value_end + 1).min(packet.len());
        if attr_name == "rdf:resource" {
            ctx.push(CONTAINER, name, decode_entities(value))?;
        } else if attr_name.contains(':') && !is_syntax_attribute(attr_name) {
            let value = decode_entities(value);
            if !value.trim().is_empty() {
                ctx.push(CONTAINER, attr_name, value)?;
            }
        }
    }
}

fn push_text(ctx: &mut Ctx<'_>, stack: &[&str], raw: &str) -> Result<(), InspectError> {
    if raw.trim().is_empty() {
        return Ok(());
    }
    push_value(ctx, stack, &decode_entities(raw.trim()))
}

fn push_value(ctx: &mut Ctx<'_>, stack: &[&str], value: &str) -> Result<(), InspectError> {
    if value.trim().is_empty() {
        return Ok(());
    }
    let key = stack
        .iter()
        .rev()
        .find(|name| !is_structural(name))
        .copied()
        .unwrap_or("(text)");
    ctx.push(CONTAINER, key, value)
}

/// The position just after the next `terminator` at or after `from`, or the end.
fn skip_past(packet: &str, from: usize, terminator: &str) -> usize {
    packet[from..]
        .find(terminator)
        .map_or(packet.len(), |i| from + i + terminator.len())
}

/// Replaces the XML predefined and numeric character references.
fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semicolon) = after.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let entity = &after[1..semicolon];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semicolon + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{ImageFormat, ImageLimits};

    fn scan(packet: &str) -> Vec<(String, String)> {
        let limits = ImageLimits::default();
        let mut ctx = Ctx {
            path: "x",
            format: ImageFormat::Jpeg,
            limits: &limits,
            metadata: Vec::new(),
            metadata_bytes: 0,
        };
        collect(&mut ctx, packet.as_bytes()).unwrap();
        ctx.metadata
            .into_iter()
            .map(|item| (item.key, item.value))
            .collect()
    }

    #[test]
    fn elements_attributes_and_lists() {
        let packet = r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" photoshop:DateCreated="2024-03-01">
<dc:creator><rdf:Seq><rdf:li>Kim &amp; Lee</rdf:li></rdf:Seq></dc:creator>
<xmpMM:DerivedFrom rdf:resource="urn:x"/>
<!-- a comment <dc:title>no</dc:title> -->
<exif:GPSLatitude>37,33.99N</exif:GPSLatitude>
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#;
        assert_eq!(
            scan(packet),
            vec![
                ("photoshop:DateCreated".to_owned(), "2024-03-01".to_owned()),
                ("dc:creator".to_owned(), "Kim & Lee".to_owned()),
                ("xmpMM:DerivedFrom".to_owned(), "urn:x".to_owned()),
                ("exif:GPSLatitude".to_owned(), "37,33.99N".to_owned()),
            ]
        );
    }

    #[test]
    fn garbage_does_not_fail() {
        for packet in [
            "<",
            "<a",
            "<a b",
            "<a b=",
            "<a b='x",
            "</",
            "<!--",
            "&#xFFFFFFFF;",
            "<a>&",
            "<![CDATA[x",
        ] {
            scan(packet);
        }
    }
}
