//! The HTTP benchmark's peer: a plain axum route that reads the JSON body and answers a small
//! JSON object, on the same runtime as the node (tokio multi-thread, one worker per core).
//! Usage: axum_hello PORT (prints "ready" once it listens).

use axum::{Router, body::Bytes, http::header, response::IntoResponse, routing::post};

/// The same allocator as the node's binary, so the comparison is of the request paths.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(clippy::print_stdout)]
fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|port| port.parse().ok()).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = Router::new().route(
            "/hello",
            post(|body: Bytes| async move {
                let _ = body.len();
                ([(header::CONTENT_TYPE, "application/json")], r#"{"count":1}"#).into_response()
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("ready {}", listener.local_addr()?);
        axum::serve(listener, app).await
    })
}
