//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{HttpResponse, route, web};

use super::AppState;

/// `GET /healthz`: the process is up and answering.
#[route("/healthz", method = "GET", method = "HEAD")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body("ok")
}

/// `GET /readyz`: the database answers and its schema is current.
#[route("/readyz", method = "GET", method = "HEAD")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let check = web::block(move || -> Result<bool, String> {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        crate::db::migrations_are_current(&mut conn)
    })
    .await;
    let (ready, reason) = match check {
        Ok(Ok(true)) => (true, "ok".to_owned()),
        Ok(Ok(false)) => (
            false,
            "database schema is not current: run `rounds migrate`".to_owned(),
        ),
        Ok(Err(e)) => (false, format!("database unavailable: {e}")),
        Err(e) => (false, format!("database check failed: {e}")),
    };
    if !ready {
        tracing::warn!(%reason, "not ready");
    }
    let mut response = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(reason)
}
