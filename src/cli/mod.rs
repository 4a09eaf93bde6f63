//! What the command line prints besides serving: the start-up banner and
//! `portico keygen`.

pub mod banner;
pub mod keygen;
