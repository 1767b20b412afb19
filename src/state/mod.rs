//! Persistent state in one SQLite file: finding state and the event outbox.

pub mod outbox;
