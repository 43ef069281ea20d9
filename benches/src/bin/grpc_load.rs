//! A closed-loop gRPC load generator for the node benchmarks: `concurrency` callers, spread
//! over `connections` HTTP/2 connections, each sending its next call when the last returns,
//! for `seconds`. Prints one JSON line: requests/s and latency percentiles in microseconds.
//! Usage: grpc_load URL CONCURRENCY CONNECTIONS SECONDS

use std::time::{Duration, Instant};

use plexspaces_proto::v1::{
    ActorAddress, InvocationMode, InvokeRequest, invocation_service_client::InvocationServiceClient,
};

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: grpc_load URL CONCURRENCY CONNECTIONS SECONDS")?;
    let concurrency: usize = args.next().ok_or("concurrency")?.parse()?;
    let connections: usize = args.next().ok_or("connections")?.parse()?;
    let seconds: u64 = args.next().ok_or("seconds")?.parse()?;
    // One thread: the load generator shares the 2 cores with the server, as wrk does.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let latencies = runtime.block_on(async move {
        let mut channels = Vec::new();
        for _ in 0..connections.max(1) {
            let channel = tonic::transport::Endpoint::from_shared(url.clone())?.connect().await?;
            channels.push(channel);
        }
        let request = InvokeRequest {
            actor: Some(ActorAddress {
                tenant: "default".into(),
                namespace: "default".into(),
                actor_type: "counter".into(),
                actor_id: String::new(),
            }),
            payload: br#"{"action":"increment"}"#.to_vec(),
            content_type: "application/json".into(),
            mode: InvocationMode::Call as i32,
            ..InvokeRequest::default()
        };
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut callers = Vec::new();
        for caller in 0..concurrency {
            let mut client =
                InvocationServiceClient::new(channels[caller % channels.len()].clone());
            let request = request.clone();
            callers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if client.invoke(request.clone()).await.is_err() {
                        return Err("a call failed");
                    }
                    latencies.push(sent.elapsed().as_nanos() as u64);
                }
                Ok(latencies)
            }));
        }
        let mut all = Vec::new();
        for caller in callers {
            all.extend(caller.await??);
        }
        Ok::<_, Box<dyn std::error::Error>>(all)
    })?;
    let mut latencies = latencies;
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "{}",
        serde_json::json!({
            "requests": latencies.len(),
            "rps": latencies.len() as f64 / seconds as f64,
            "p50_us": percentile(0.50),
            "p99_us": percentile(0.99),
        })
    );
    Ok(())
}
