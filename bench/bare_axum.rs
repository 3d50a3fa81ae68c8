//! The floor for `bench/http.sh`: a bare axum server with no logging and no middleware,
//! answering `GET /api/health` with a small JSON body. Not part of Toolshed.

use axum::{Router, routing::get};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "18080".into());
    let app = Router::new().route(
        "/api/health",
        get(|| async { ([("content-type", "application/json")], r#"{"status":"OK"}"#) }),
    );
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await
}
