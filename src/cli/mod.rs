//! What the command line prints besides serving: the start-up banner,
//! `portico keygen` and `portico status`.

pub mod banner;
pub mod keygen;
pub mod status;
