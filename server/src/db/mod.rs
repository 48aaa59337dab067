//! Database access (SQLite and PostgreSQL via sqlx).
