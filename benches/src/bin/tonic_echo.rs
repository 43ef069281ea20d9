//! The gRPC benchmark's peer: a bare tonic server of the node's own `InvocationService` that
//! answers every call with its payload, no actor behind it. Usage: tonic_echo PORT (prints
//! "ready ADDRESS" once it listens).

use plexspaces_proto::v1::{
    InvokeRequest, InvokeResponse,
    invocation_service_server::{InvocationService, InvocationServiceServer},
};
use tonic::{Request, Response, Status};

#[derive(Debug)]
struct Echo;

#[tonic::async_trait]
impl InvocationService for Echo {
    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(InvokeResponse {
            payload: request.payload,
            content_type: "application/json".to_owned(),
            ..InvokeResponse::default()
        }))
    }
}

/// The same allocator as the node's binary, so the comparison is of the request paths.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).and_then(|port| port.parse().ok()).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("ready {}", listener.local_addr()?);
        tonic::transport::Server::builder()
            .add_service(InvocationServiceServer::new(Echo))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await?;
        Ok(())
    })
}
