//! readroom server: configuration, database, ingest pipeline, HTTP API and the command-line program.
pub mod db;
