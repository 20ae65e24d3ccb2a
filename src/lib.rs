//! # screening
//!
//! The NHS breast-screening SDK in one import: [`core`] (the pure domain: NHS numbers, appointments,
//! messages, FHIR) and [`store`] (SQLite and PostgreSQL adapters). The runnable examples in
//! `examples/` and the benches in `benches/` live in this package.
//!
//! Other services can depend on `screening-core` alone for the logic without any database.

pub use screening_core as core;
pub use screening_store as store;
