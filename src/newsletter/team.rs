//! The editors' tools for a blog's subscribers.

use actix_web::web;

/// Routes under `/dashboard`.
pub fn routes(_cfg: &mut web::ServiceConfig) {}
