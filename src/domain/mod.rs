//! Pure domain rules: numbers, titles, delivery states, jurisdiction, signatures. No I/O in here.
pub mod error;
pub mod instant;
pub mod jurisdiction;
pub mod keys;
pub mod merkle;
pub mod model;
pub mod names;
pub mod number;
pub mod seal;
pub mod state;
pub mod title;

pub use error::DomainError;
