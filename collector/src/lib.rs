//! khorus collector: live kernel activity as [`khorus_bus::SignalFrame`]s.
//!
//! Sources produce raw counter deltas per tick ([`sample::Sample`]); the [`normalise`] step
//! turns them into rates and musical levels; [`stage`] publishes them on the bus, records
//! them to a [`trace`] and prints them. See `sources` for where each signal comes from.

pub mod config;
pub mod normalise;
pub mod privileges;
pub mod sample;
pub mod sources;
pub mod stage;
pub mod table;
pub mod trace;
