//! `plexspaces start`: options from flags, then environment variables, then a TOML config
//! file, then the defaults; the chosen ports go to stdout as one JSON line.

use std::{net::IpAddr, path::PathBuf};

use clap::{Args, ValueEnum};
use plexspaces_node::{Node, Options};

/// How a node is started.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// A TOML file with node options (field names as in `plexspaces_node::Options`).
    #[arg(long, env = "PLEXSPACES_CONFIG")]
    config: Option<PathBuf>,
    /// The address to bind (default 127.0.0.1). Any other address needs --admin-token or --insecure.
    #[arg(long, env = "PLEXSPACES_HOST")]
    host: Option<IpAddr>,
    /// The invoke HTTP port (default 8080; 0 picks a free one).
    #[arg(long, env = "PLEXSPACES_INVOKE_PORT")]
    invoke_port: Option<u16>,
    /// The admin HTTP port (default 8094; 0 picks a free one).
    #[arg(long, env = "PLEXSPACES_ADMIN_PORT")]
    admin_port: Option<u16>,
    /// The gRPC port (default 8000; 0 picks a free one).
    #[arg(long, env = "PLEXSPACES_GRPC_PORT")]
    grpc_port: Option<u16>,
    /// Require `Authorization: Bearer TOKEN` on every request.
    #[arg(long, env = "PLEXSPACES_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Allow a non-loopback --host without a token.
    #[arg(long, env = "PLEXSPACES_INSECURE")]
    insecure: bool,
    /// The node's data directory (default ./plexspaces-data).
    #[arg(long, env = "PLEXSPACES_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The largest request body accepted, in bytes (default 1 MiB).
    #[arg(long, env = "PLEXSPACES_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Where compiled modules are cached (default: <data-dir>/cache).
    #[arg(long, env = "PLEXSPACES_COMPILE_CACHE_DIR")]
    compile_cache_dir: Option<PathBuf>,
    /// The embedded example actors to serve (comma-separated; an empty list serves none).
    #[arg(
        long,
        env = "PLEXSPACES_EXAMPLES",
        value_delimiter = ',',
        default_value = "counter,echo,ledger,order_workflow"
    )]
    examples: Vec<String>,
    /// Log format on stderr.
    #[arg(long, env = "PLEXSPACES_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl StartArgs {
    /// The node options: flags, then environment, then the config file (read here, before
    /// any runtime exists), then the defaults.
    pub(crate) fn options(&self) -> Result<Options, String> {
        let mut options = match &self.config {
            None => Options::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    format!("cannot read the config file {}: {error}", path.display())
                })?;
                toml::from_str(&text)
                    .map_err(|error| format!("invalid config file {}: {error}", path.display()))?
            }
        };
        if let Some(host) = self.host {
            options.host = host;
        }
        if let Some(port) = self.invoke_port {
            options.invoke_port = port;
        }
        if let Some(port) = self.admin_port {
            options.admin_port = port;
        }
        if let Some(port) = self.grpc_port {
            options.grpc_port = port;
        }
        if let Some(token) = &self.admin_token {
            options.admin_token = Some(token.clone());
        }
        if self.insecure {
            options.insecure = true;
        }
        if let Some(data_dir) = &self.data_dir {
            options.data_dir = data_dir.clone();
        }
        if let Some(limit) = self.max_body_bytes {
            options.max_body_bytes = limit;
        }
        if let Some(dir) = &self.compile_cache_dir {
            options.compile_cache_dir = Some(dir.clone());
        }
        Ok(options)
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLEXSPACES_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs a node until SIGTERM or Ctrl-C, then shuts it down gracefully.
pub(crate) async fn run(args: StartArgs, options: Options) -> Result<(), String> {
    init_logs(args.log_format);
    // Watched before the ports are printed: a SIGTERM sent as soon as a supervisor (or a
    // test) reads them must find the handler, not the default action.
    let signals = Signals::watch()?;
    let examples: Vec<String> =
        args.examples.iter().filter(|name| !name.is_empty()).cloned().collect();
    let node = crate::examples::register(Node::builder().options(options), &examples)?
        .start()
        .await
        .map_err(|error| format!("cannot start the node: {error}"))?;
    let ports = serde_json::json!({
        "invoke": node.invoke_addr().to_string(),
        "admin": node.admin_addr().to_string(),
        "grpc": node.grpc_addr().to_string(),
    });
    crate::client::print_line(&ports.to_string());
    signals.wait().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT, watched from the moment this is made.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn watch() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate())
            .map_err(|error| format!("cannot watch SIGTERM: {error}"))?;
        let interrupt = signal(SignalKind::interrupt())
            .map_err(|error| format!("cannot watch SIGINT: {error}"))?;
        Ok(Self { terminate, interrupt })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
