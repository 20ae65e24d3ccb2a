//! # screening
//!
//! The NHS breast-screening SDK in one import: [`core`] (the pure domain: NHS numbers, appointments,
//! messages, FHIR), [`store`] (SQLite and PostgreSQL adapters) and [`gateway`] (the hub API and the
//! gateway agent). The runnable examples in
//! `examples/` and the benches in `benches/` live in this package.
//!
//! Other services can depend on `screening-core` alone for the logic without any database.

pub use screening_core as core;
pub use screening_gateway as gateway;
pub use screening_store as store;
