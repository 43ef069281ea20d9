//! `plexspaces`: runs a node (`plexspaces start`) and talks to one over gRPC (`invoke`,
//! `call`, `types`, `actors`, `state`, `rm`, `status`, `deploy`, `undeploy`, `deployments`,
//! `logs`). Data goes to stdout, as tables for
//! people or JSON with `--json`; messages go to stderr. Exit status: 0 on success, 1 when the
//! node answered with an error (printed with its catalogue code), 2 on a usage error.

mod client;
mod deploy;
mod examples;
mod start;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: a node's memory is allocated on one worker thread and freed on another all the
/// time (a request's buffers, an actor's messages); glibc's allocator serialized those frees
/// on its arena locks (20 % of the HTTP benchmark's profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The PlexSpaces actor application server.
#[derive(Debug, Parser)]
#[command(name = "plexspaces", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node on this machine (the embedded defaults need nothing else).
    Start(start::StartArgs),
    /// Tell an actor: queue a message and print its message id.
    Invoke(client::InvokeArgs),
    /// Call an actor: send a message and print the reply.
    Call(client::CallArgs),
    /// List the actor types the node serves.
    Types(client::Connection),
    /// List the actors of one type, with their lifecycle state.
    Actors(client::TypeArgs),
    /// Print one actor's state.
    State(client::ActorArgs),
    /// Stop one actor for good and delete its state.
    Rm(client::ActorArgs),
    /// Print the node's status.
    Status(client::Connection),
    /// Deploy a WebAssembly module (built by plexspaces-py or plexspaces-ts build).
    Deploy(deploy::DeployArgs),
    /// Stop a deployment's actors and remove it.
    Undeploy(deploy::DeploymentArgs),
    /// List the deployments.
    Deployments(deploy::ListArgs),
    /// Print a deployed type's guest output and host.log lines (`-f` follows).
    Logs(deploy::LogsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            report(&format!("cannot start the tokio runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    // A config file is read before the runtime runs, not on its worker threads.
    let start_options = match &cli.command {
        Command::Start(args) => match args.options() {
            Ok(options) => options,
            Err(message) => {
                report(&message);
                return ExitCode::FAILURE;
            }
        },
        _ => plexspaces_node::Options::default(),
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Start(args) => start::run(args, start_options).await,
            Command::Invoke(args) => client::invoke(args).await,
            Command::Call(args) => client::call(args).await,
            Command::Types(connection) => client::types(connection).await,
            Command::Actors(args) => client::actors(args).await,
            Command::State(args) => client::state(args).await,
            Command::Rm(args) => client::rm(args).await,
            Command::Status(connection) => client::status(connection).await,
            Command::Deploy(args) => deploy::deploy(args).await,
            Command::Undeploy(args) => deploy::undeploy(args).await,
            Command::Deployments(args) => deploy::deployments(args).await,
            Command::Logs(args) => deploy::logs(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            report(&message);
            ExitCode::FAILURE
        }
    }
}

/// A message for people, on stderr.
#[allow(clippy::print_stderr)]
fn report(message: &str) {
    eprintln!("plexspaces: {message}");
}
