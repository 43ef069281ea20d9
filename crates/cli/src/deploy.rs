//! `deploy`, `undeploy`, `deployments` and `logs`: the deployment service over gRPC.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use plexspaces_proto::v1::{self as pb, deployment_service_client::DeploymentServiceClient};
use serde_json::{Value, json};

use crate::client::{
    Connection, Scope, channel, failed, print_json, print_line, print_table, request,
};

/// A module to deploy.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The module (`.wasm`), as `plexspaces-py build` or `plexspaces-ts build` wrote it.
    file: PathBuf,
    /// The actor type it deploys as (a module of several classes: the prefix of their types).
    #[arg(long, short = 't')]
    actor_type: String,
    /// The version (default: the first 12 hex digits of the module's SHA-256).
    #[arg(long)]
    version: Option<String>,
    /// The deployment's config, as JSON (`{"idle_timeout_ms": 60000}`).
    #[arg(long)]
    config: Option<String>,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    connection: Connection,
}

/// One deployment, by the name it was deployed as.
#[derive(Debug, Args)]
pub(crate) struct DeploymentArgs {
    /// The actor_type it was deployed as.
    name: String,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    connection: Connection,
}

/// The deployments of a tenant.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The tenant.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Only this namespace (default: every namespace).
    #[arg(long, default_value = "")]
    namespace: String,
    #[command(flatten)]
    connection: Connection,
}

/// A deployed type's logs.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The deployed actor type.
    actor_type: String,
    /// Only this actor's lines.
    id: Option<String>,
    /// Keep following: print new lines as they come (Ctrl-C stops).
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    connection: Connection,
}

/// The size of each uploaded chunk.
const CHUNK: usize = 256 * 1024;

pub(crate) async fn deploy(args: DeployArgs) -> Result<(), String> {
    let path = args.file.clone();
    let wasm = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| format!("cannot read {}: {error}", args.file.display()))?;
    let config = match &args.config {
        Some(text) => {
            serde_json::from_str::<Value>(text)
                .map_err(|error| format!("--config is not JSON: {error}"))?;
            text.clone().into_bytes()
        }
        None => Vec::new(),
    };
    let spec = pb::DeploySpec {
        tenant: args.scope.tenant.clone(),
        namespace: args.scope.namespace.clone(),
        actor_type: args.actor_type.clone(),
        version: args.version.clone().unwrap_or_default(),
        config,
    };
    let connection = &args.connection;
    let mut client = DeploymentServiceClient::new(channel(connection).await?)
        .max_decoding_message_size(16 * 1024 * 1024);
    let total = wasm.len() as u64;
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .map_err(|error| error.to_string())?
            .progress_chars("=> "),
    );
    progress.set_message("uploading");
    let uploaded = progress.clone();
    let chunks: Vec<pb::DeployChunk> = wasm
        .chunks(CHUNK)
        .enumerate()
        .map(|(index, data)| pb::DeployChunk {
            spec: (index == 0).then(|| spec.clone()),
            data: data.to_vec(),
        })
        .collect();
    let compiling = progress.clone();
    let stream = futures_util::StreamExt::map(futures_util::stream::iter(chunks), move |chunk| {
        uploaded.inc(chunk.data.len() as u64);
        if uploaded.position() >= total {
            compiling.set_message("compiling");
            compiling.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        chunk
    });
    let response = client.deploy(request(connection, stream)?).await;
    progress.finish_and_clear();
    let info = response.map_err(failed)?.into_inner().deployment.unwrap_or_default();
    if connection.json {
        print_json(&info_json(&info), true);
        return Ok(());
    }
    let compile = if info.cached {
        "cached".to_owned()
    } else {
        format!("compiled in {} ms", info.compile_ms)
    };
    print_line(&format!(
        "deployed {} version {} ({}, {:.1} MB, {compile})",
        info.name,
        info.version,
        info.sdk,
        info.size_bytes as f64 / 1e6
    ));
    let rows: Vec<Vec<String>> = info
        .types
        .iter()
        .map(|ty| {
            vec![ty.name.clone(), ty.class_name.clone(), ty.behavior.clone(), ty.handlers.join(",")]
        })
        .collect();
    print_table(&["TYPE", "CLASS", "BEHAVIOR", "HANDLERS"], &rows);
    Ok(())
}

fn info_json(info: &pb::DeploymentInfo) -> Value {
    let types: Vec<Value> = info
        .types
        .iter()
        .map(|ty| json!({"name": ty.name, "class": ty.class_name, "behavior": ty.behavior, "facets": ty.facets, "handlers": ty.handlers}))
        .collect();
    json!({
        "tenant": info.tenant, "namespace": info.namespace, "name": info.name,
        "version": info.version, "sha256": info.sha256, "size_bytes": info.size_bytes,
        "sdk": info.sdk, "types": types, "compile_ms": info.compile_ms, "cached": info.cached,
        "instances": info.instances,
    })
}

fn reference(args: &DeploymentArgs) -> pb::DeploymentRef {
    pb::DeploymentRef {
        tenant: args.scope.tenant.clone(),
        namespace: args.scope.namespace.clone(),
        name: args.name.clone(),
    }
}

pub(crate) async fn undeploy(args: DeploymentArgs) -> Result<(), String> {
    let connection = &args.connection;
    let mut client = DeploymentServiceClient::new(channel(connection).await?);
    client.undeploy(request(connection, reference(&args))?).await.map_err(failed)?;
    if connection.json {
        print_json(&json!({"undeployed": args.name}), true);
    } else {
        print_line(&format!("undeployed {}", args.name));
    }
    Ok(())
}

pub(crate) async fn deployments(args: ListArgs) -> Result<(), String> {
    let connection = &args.connection;
    let mut client = DeploymentServiceClient::new(channel(connection).await?);
    let message = pb::ListDeploymentsRequest {
        tenant: args.tenant.clone(),
        namespace: args.namespace.clone(),
    };
    let deployments = client
        .list_deployments(request(connection, message)?)
        .await
        .map_err(failed)?
        .into_inner()
        .deployments;
    if connection.json {
        let all: Vec<Value> = deployments.iter().map(info_json).collect();
        print_json(&json!({ "deployments": all }), true);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = deployments
        .into_iter()
        .map(|info| {
            let types: Vec<String> = info.types.iter().map(|ty| ty.name.clone()).collect();
            vec![info.namespace, info.name, info.version, info.sdk, types.join(",")]
        })
        .collect();
    print_table(&["NAMESPACE", "NAME", "VERSION", "SDK", "TYPES"], &rows);
    Ok(())
}

pub(crate) async fn logs(args: LogsArgs) -> Result<(), String> {
    let connection = &args.connection;
    let mut client = DeploymentServiceClient::new(channel(connection).await?);
    let message = pb::GetLogsRequest {
        tenant: args.scope.tenant.clone(),
        namespace: args.scope.namespace.clone(),
        actor_type: args.actor_type.clone(),
        actor_id: args.id.clone().unwrap_or_default(),
        follow: args.follow,
    };
    let mut lines =
        client.get_logs(request(connection, message)?).await.map_err(failed)?.into_inner();
    while let Some(line) = lines.message().await.map_err(failed)? {
        if connection.json {
            print_json(
                &json!({"seq": line.seq, "time_ms": line.time_ms, "level": line.level, "stream": line.stream, "id": line.actor_id, "message": line.message}),
                true,
            );
        } else {
            print_line(&format!(
                "{:5} {:6} {}: {}",
                line.level, line.stream, line.actor_id, line.message
            ));
        }
    }
    Ok(())
}
