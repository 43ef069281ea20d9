//! The commands that talk to a running node, over its gRPC port.

use std::io::Write as _;

use clap::Args;
use plexspaces_node::Error;
use plexspaces_proto::v1::{
    self as pb, actor_service_client::ActorServiceClient,
    invocation_service_client::InvocationServiceClient, node_service_client::NodeServiceClient,
};
use serde_json::{Value, json};
use tonic::{Request, transport::Channel};

/// Where the node is and how to talk to it.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The node's gRPC address.
    #[arg(long, env = "PLEXSPACES_GRPC", default_value = "http://127.0.0.1:8000", global = true)]
    grpc: String,
    /// The node's admin token, when it requires one.
    #[arg(long, env = "PLEXSPACES_ADMIN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// The tenant and namespace an actor type lives in.
#[derive(Debug, Args)]
pub(crate) struct Scope {
    /// The tenant.
    #[arg(long, default_value = "default")]
    pub(crate) tenant: String,
    /// The namespace.
    #[arg(long, default_value = "default")]
    pub(crate) namespace: String,
}

/// An actor type.
#[derive(Debug, Args)]
pub(crate) struct TypeArgs {
    /// The actor type.
    actor_type: String,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    connection: Connection,
}

/// One actor: `TYPE` (its default actor) or `TYPE/ID`.
#[derive(Debug, Args)]
pub(crate) struct ActorArgs {
    /// `TYPE` or `TYPE/ID`.
    actor: String,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    connection: Connection,
}

/// A tell.
#[derive(Debug, Args)]
pub(crate) struct InvokeArgs {
    #[command(flatten)]
    target: ActorArgs,
    /// The JSON payload (with its `action` field), or `-` to read it from stdin.
    #[arg(default_value = "{}")]
    payload: String,
    /// Deliver once however often this command is retried with the same key.
    #[arg(long)]
    idempotency_key: Option<String>,
}

/// A call.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    #[command(flatten)]
    target: ActorArgs,
    /// The JSON payload (with its `action` field), or `-` to read it from stdin.
    #[arg(default_value = "{}")]
    payload: String,
    /// How long to wait for the reply, in milliseconds (the node's default: 30000).
    #[arg(long, default_value_t = 0)]
    timeout_ms: u64,
}

/// One line of data on stdout.
#[allow(clippy::print_stdout)]
pub(crate) fn print_line(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

pub(crate) async fn channel(connection: &Connection) -> Result<Channel, String> {
    let endpoint = Channel::from_shared(connection.grpc.clone())
        .map_err(|error| format!("invalid --grpc address {:?}: {error}", connection.grpc))?;
    endpoint
        .connect()
        .await
        .map_err(|error| format!("cannot reach the node at {}: {error}", connection.grpc))
}

pub(crate) fn request<T>(connection: &Connection, message: T) -> Result<Request<T>, String> {
    let mut request = Request::new(message);
    if let Some(token) = &connection.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token must be printable ASCII".to_owned())?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

pub(crate) fn failed(status: tonic::Status) -> String {
    let error = Error::from_status(&status);
    match &error.facet {
        Some(facet) => format!("error[{}] (facet {facet}): {}", error.code, error.message),
        None => format!("error[{}]: {}", error.code, error.message),
    }
}

fn address(args: &ActorArgs) -> pb::ActorAddress {
    let (actor_type, actor_id) = args.actor.split_once('/').unwrap_or((&args.actor, ""));
    pb::ActorAddress {
        tenant: args.scope.tenant.clone(),
        namespace: args.scope.namespace.clone(),
        actor_type: actor_type.to_owned(),
        actor_id: actor_id.to_owned(),
    }
}

fn payload(text: &str) -> Result<Vec<u8>, String> {
    let text = if text == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|error| format!("cannot read stdin: {error}"))?
    } else {
        text.to_owned()
    };
    serde_json::from_str::<Value>(&text)
        .map_err(|error| format!("the payload is not JSON: {error}"))?;
    Ok(text.into_bytes())
}

/// Sends one message to the target over gRPC.
async fn send(
    target: &ActorArgs,
    payload_text: &str,
    mode: pb::InvocationMode,
    timeout_ms: u64,
    idempotency_key: String,
) -> Result<pb::InvokeResponse, String> {
    let connection = &target.connection;
    let mut client = InvocationServiceClient::new(channel(connection).await?);
    let message = pb::InvokeRequest {
        actor: Some(address(target)),
        payload: payload(payload_text)?,
        content_type: "application/json".to_owned(),
        mode: mode as i32,
        timeout_ms,
        idempotency_key,
        action: String::new(),
    };
    Ok(client.invoke(request(connection, message)?).await.map_err(failed)?.into_inner())
}

pub(crate) async fn invoke(args: InvokeArgs) -> Result<(), String> {
    let key = args.idempotency_key.clone().unwrap_or_default();
    let response = send(&args.target, &args.payload, pb::InvocationMode::Tell, 0, key).await?;
    if args.target.connection.json {
        print_line(
            &json!({"message_id": response.message_id, "duplicate": response.duplicate})
                .to_string(),
        );
    } else if response.duplicate {
        print_line(&format!("{} (duplicate: not delivered again)", response.message_id));
    } else {
        print_line(&response.message_id);
    }
    Ok(())
}

pub(crate) async fn call(args: CallArgs) -> Result<(), String> {
    let mode = pb::InvocationMode::Call;
    let response = send(&args.target, &args.payload, mode, args.timeout_ms, String::new()).await?;
    let reply: Value = serde_json::from_slice(&response.payload)
        .map_err(|error| format!("the node sent a reply that is not JSON: {error}"))?;
    print_json(&reply, args.target.connection.json);
    Ok(())
}

pub(crate) fn print_json(value: &Value, compact: bool) {
    let text =
        if compact { Some(value.to_string()) } else { serde_json::to_string_pretty(value).ok() };
    print_line(&text.unwrap_or_else(|| value.to_string()));
}

/// Columns padded to their widest cell.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|title| title.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        print_line(padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub(crate) async fn types(connection: Connection) -> Result<(), String> {
    let mut client = ActorServiceClient::new(channel(&connection).await?);
    let types = client
        .list_actor_types(request(&connection, pb::ListActorTypesRequest {})?)
        .await
        .map_err(failed)?
        .into_inner()
        .types;
    if connection.json {
        let types: Vec<Value> = types
            .iter()
            .map(
                |info| json!({"name": info.name, "behavior": info.behavior, "facets": info.facets}),
            )
            .collect();
        print_json(&json!({ "types": types }), true);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = types
        .into_iter()
        .map(|info| vec![info.name, info.behavior, info.facets.join(",")])
        .collect();
    print_table(&["TYPE", "BEHAVIOR", "FACETS"], &rows);
    Ok(())
}

pub(crate) async fn actors(args: TypeArgs) -> Result<(), String> {
    let connection = &args.connection;
    let mut client = ActorServiceClient::new(channel(connection).await?);
    let message = pb::ListActorsRequest {
        tenant: args.scope.tenant.clone(),
        namespace: args.scope.namespace.clone(),
        actor_type: args.actor_type.clone(),
    };
    let actors = client
        .list_actors(request(connection, message)?)
        .await
        .map_err(failed)?
        .into_inner()
        .actors;
    if connection.json {
        let actors: Vec<Value> = actors
            .iter()
            .map(|actor| json!({"actor_id": actor.actor_id, "lifecycle": actor.lifecycle, "mailbox_depth": actor.mailbox_depth}))
            .collect();
        print_json(&json!({ "actors": actors }), true);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = actors
        .into_iter()
        .map(|actor| vec![actor.actor_id, actor.lifecycle, actor.mailbox_depth.to_string()])
        .collect();
    print_table(&["ACTOR_ID", "LIFECYCLE", "MAILBOX"], &rows);
    Ok(())
}

pub(crate) async fn state(args: ActorArgs) -> Result<(), String> {
    let connection = &args.connection;
    let mut client = ActorServiceClient::new(channel(connection).await?);
    let message = pb::GetActorStateRequest { actor: Some(address(&args)) };
    let state =
        client.get_actor_state(request(connection, message)?).await.map_err(failed)?.into_inner();
    let state: Value = serde_json::from_slice(&state.state)
        .map_err(|error| format!("the node sent a state that is not JSON: {error}"))?;
    print_json(&state, connection.json);
    Ok(())
}

pub(crate) async fn rm(args: ActorArgs) -> Result<(), String> {
    let connection = &args.connection;
    let mut client = ActorServiceClient::new(channel(connection).await?);
    let target = address(&args);
    let message = pb::DeleteActorRequest { actor: Some(target.clone()) };
    client.delete_actor(request(connection, message)?).await.map_err(failed)?;
    if connection.json {
        print_json(&json!({"deleted": args.actor}), true);
    } else {
        print_line(&format!("deleted {}", args.actor));
    }
    Ok(())
}

pub(crate) async fn status(connection: Connection) -> Result<(), String> {
    let mut client = NodeServiceClient::new(channel(&connection).await?);
    let status = client
        .get_status(request(&connection, pb::GetStatusRequest {})?)
        .await
        .map_err(failed)?
        .into_inner();
    if connection.json {
        let listeners: serde_json::Map<String, Value> = status
            .listeners
            .iter()
            .map(|listener| (listener.name.clone(), Value::String(listener.address.clone())))
            .collect();
        let by_lifecycle: serde_json::Map<String, Value> = status
            .actors_by_lifecycle
            .iter()
            .map(|count| (count.lifecycle.clone(), json!(count.actors)))
            .collect();
        print_json(
            &json!({
                "version": status.version, "uptime_ms": status.uptime_ms, "listeners": listeners,
                "actors": status.actors, "actors_by_lifecycle": by_lifecycle,
                "actor_types": status.actor_types, "data_dir": status.data_dir,
            }),
            true,
        );
        return Ok(());
    }
    let mut rows = vec![
        vec!["version".to_owned(), status.version],
        vec!["uptime".to_owned(), format!("{:.1} s", status.uptime_ms as f64 / 1000.0)],
        vec!["data dir".to_owned(), status.data_dir],
        vec!["actor types".to_owned(), status.actor_types.to_string()],
        vec!["actors".to_owned(), status.actors.to_string()],
    ];
    for count in status.actors_by_lifecycle.into_iter().filter(|count| count.actors > 0) {
        rows.push(vec![format!("  {}", count.lifecycle), count.actors.to_string()]);
    }
    for listener in status.listeners {
        rows.push(vec![format!("{} port", listener.name), listener.address]);
    }
    print_table(&["FIELD", "VALUE"], &rows);
    Ok(())
}
