//! rounds: a self-hosted microblog and newsletter server for NHS leaders.
//!
//! The binary's `main` parses the command line and calls into [`cli`]; everything else is
//! here so the end-to-end tests can build a server with their own settings.

pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod editorial;
pub mod error;
pub mod federation;
pub mod jobs;
pub mod mail;
pub mod newsletter;
pub mod publishing;
pub mod startup;
pub mod telemetry;
pub mod web;
