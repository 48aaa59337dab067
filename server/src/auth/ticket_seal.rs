//! Seals streaming tickets to the workers' age recipients, so the browser that carries them
//! cannot read them (the sealed form is described in `readroom_domain::ticket`).
//!
//! A ticket names the case, its study and the bundle object keys. The browser holds tickets
//! for the next case and hands them to the worker over the data channel; were they only
//! encoded, a grader could decode one and tell a hidden repeat from the case it repeats (same
//! bundle key). Sealed to the study's recipients, the ticket opens only where the case's
//! bundles open: on a worker. Encryption only: the server never holds an identity.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use readroom_domain::ticket::{MAX_SEALED_RECIPIENTS, MAX_SEALED_TICKET_LEN, SEALED_TICKET_PREFIX};

/// Why a ticket could not be sealed (a configuration problem, never the user's).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The study lists no recipients.
    #[error("the study has no age recipients to seal streaming tickets to")]
    NoRecipients,
    /// A recipient is not an X25519 age recipient.
    #[error("the study's recipient {0:?} is not an age X25519 recipient (age1…)")]
    BadRecipient(String),
    /// More recipients than a worker accepts in a ticket.
    #[error(
        "the study lists {0} age recipients; a streaming ticket is sealed to at most {MAX_SEALED_RECIPIENTS}"
    )]
    TooManyRecipients(usize),
    /// So many recipients that the sealed ticket exceeds what a worker accepts.
    #[error(
        "a ticket sealed to {recipients} recipients is {len} characters, over the {MAX_SEALED_TICKET_LEN} a worker accepts; the study lists too many recipients"
    )]
    TooLong {
        /// How many recipients.
        recipients: usize,
        /// The sealed ticket's length.
        len: usize,
    },
    /// age could not encrypt (I/O into memory does not fail; kept for completeness).
    #[error("cannot seal the ticket: {0}")]
    Age(String),
}

/// Seals a signed `rt1` ticket to `recipients` (age X25519 public keys): `rt2.<base64url>`.
pub fn seal(ticket: &str, recipients: &[String]) -> Result<String, SealError> {
    if recipients.is_empty() {
        return Err(SealError::NoRecipients);
    }
    if recipients.len() > MAX_SEALED_RECIPIENTS {
        return Err(SealError::TooManyRecipients(recipients.len()));
    }
    let parsed = recipients
        .iter()
        .map(|text| {
            text.parse::<age::x25519::Recipient>()
                .map_err(|_| SealError::BadRecipient(text.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|err| SealError::Age(err.to_string()))?;
    let mut sealed = Vec::with_capacity(ticket.len() + 128 * recipients.len() + 128);
    let mut writer = encryptor
        .wrap_output(&mut sealed)
        .map_err(|err| SealError::Age(err.to_string()))?;
    writer
        .write_all(ticket.as_bytes())
        .and_then(|()| writer.finish().map(drop))
        .map_err(|err| SealError::Age(err.to_string()))?;
    let wire = format!("{SEALED_TICKET_PREFIX}.{}", URL_SAFE_NO_PAD.encode(&sealed));
    if wire.len() > MAX_SEALED_TICKET_LEN {
        return Err(SealError::TooLong {
            recipients: recipients.len(),
            len: wire.len(),
        });
    }
    Ok(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    #[test]
    fn a_sealed_ticket_shows_nothing_of_what_it_carries() {
        let ticket = "rt1.eyJjYXNlIjoiY2FzZS0xIn0.c2ln";
        let sealed = seal(ticket, &[RECIPIENT.to_owned()]).unwrap();
        assert!(sealed.starts_with("rt2."));
        assert!(!sealed.contains("eyJjYXNlIjoiY2FzZS0xIn0"));
        let bytes = URL_SAFE_NO_PAD.decode(&sealed[4..]).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(ticket));
        // Sealing twice gives two different tickets (a fresh file key each time).
        assert_ne!(sealed, seal(ticket, &[RECIPIENT.to_owned()]).unwrap());
    }

    #[test]
    fn configuration_problems_are_named() {
        assert!(matches!(seal("rt1.a.b", &[]), Err(SealError::NoRecipients)));
        let err = seal("rt1.a.b", &["age1nope".to_owned()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the study's recipient \"age1nope\" is not an age X25519 recipient (age1…)"
        );
        let many = vec![RECIPIENT.to_owned(); 9];
        assert!(matches!(
            seal("rt1.a.b", &many),
            Err(SealError::TooManyRecipients(9))
        ));
        let long = "x".repeat(5000);
        assert!(matches!(
            seal(&long, &[RECIPIENT.to_owned()]),
            Err(SealError::TooLong { recipients: 1, .. })
        ));
    }
}
