//! End-to-end tests: each starts the real server on port 0 with a database of its own,
//! once on SQLite and once on PostgreSQL, and talks HTTP to it.

mod helpers;

mod auth;
mod browser;
mod cli;
mod editor;
mod editorial;
mod editorial_restart;
mod federation;
mod feeds;
mod jobs;
mod mail;
mod newsletter;
mod public;
mod serve;
mod smtp;
