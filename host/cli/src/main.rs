//! The `vdi` command. Parses arguments and calls into the subcommands; all work lives there.

mod api_bench;
mod api_cmd;
mod bench;
mod cluster_bench;
mod cluster_cmd;
mod connect_cmd;
mod dev_idp;
mod kubeconfig;
mod login;
mod oidc;
mod oidc_flags;
mod operator_bench;
mod operator_cmd;
mod plugin_cmd;
mod plugin_new;
mod plugin_oci;
mod samples;
mod startup_bench;
mod token_cache;
mod token_cmd;
mod up;
mod user_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// VDI platform: Kubernetes-native virtual desktops decided by WebAssembly plugins.
#[derive(Parser)]
#[command(name = "vdi", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform on this machine: the embedded control plane with simulated GPU
    /// nodes, the CRDs, default templates and plugins, and the operator, until Ctrl-C.
    Up(up::UpArgs),
    /// Run the operator against a cluster (in-cluster service account or KUBECONFIG).
    Operator(operator_cmd::OperatorArgs),
    /// Print the CustomResourceDefinitions (YAML).
    Crds,
    /// Run the embedded Kubernetes-compatible control plane and write its kubeconfig.
    Cluster(cluster_cmd::ClusterArgs),
    /// Measure the embedded control plane: creates/s, updates/s, large lists, watch fan-out.
    BenchCluster(cluster_bench::BenchArgs),
    /// Measure the operator: many sessions at once on many simulated GPU nodes.
    BenchOperator(operator_bench::BenchArgs),
    /// Time to desktop on the local process node: sessions created one at a time, each timed to
    /// the first frame decoded by headless Chromium, split by stage, against a by-hand baseline.
    BenchStartup(startup_bench::BenchArgs),
    /// Measure the GraphQL API: a user's sessions among many, and one change fanned out to many
    /// subscriptions, each against the same operation on the Kubernetes API.
    BenchApi(api_bench::BenchArgs),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Sign in at an OpenID Provider (browser, code + PKCE) and write a kubeconfig user that
    /// gets its token from `vdi token`.
    Login(login::LoginArgs),
    /// Print an ExecCredential with the cached ID token, refreshed when it expires within a
    /// minute (the kubeconfig exec credential plugin `vdi login` sets up).
    Token(token_cmd::TokenArgs),
    /// Print the URL that opens a session's desktop, with a fresh connect token for its owner
    /// (5 minutes to connect; the stream ends with the session).
    Connect(connect_cmd::ConnectArgs),
    /// Manage the platform's users.
    #[command(subcommand)]
    User(UserCommand),
    /// Serve the GraphQL API against a cluster (in-cluster service account or KUBECONFIG),
    /// acting as each signed-in user by impersonation.
    Api(api_cmd::ApiArgs),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Give a user their namespace and the `vdi-user` role in it.
    Add(user_cmd::AddArgs),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a plugin project (Rust, JavaScript or Python) with starter test vectors.
    New(plugin_new::NewArgs),
    /// Build a plugin project into `out/<name>.wasm`; prints its path and sha256.
    Build(plugin_new::BuildArgs),
    /// Show a component's world, digest, imports and size.
    Inspect {
        /// The component (.wasm).
        wasm: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run test vectors (a directory of JSON files) against a component.
    Test(plugin_cmd::TestArgs),
    /// Measure decisions per second and latency with a fresh instance per decision.
    Bench(bench::BenchArgs),
    /// Push a component to an OCI registry as a Wasm artifact; prints its immutable
    /// `oci://…@sha256:` reference and the module's sha256 (what `spec.sha256` pins).
    Push(plugin_oci::PushArgs),
    /// Pull a component from an OCI registry into a file; prints its sha256.
    Pull(plugin_oci::PullArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VDI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(&args),
        Command::User(UserCommand::Add(args)) => user_cmd::add(&args),
        Command::Cluster(args) => cluster_cmd::run(&args),
        Command::Operator(args) => operator_cmd::run(&args),
        Command::Crds => operator_cmd::crds(),
        Command::BenchCluster(args) => cluster_bench::run(&args),
        Command::BenchOperator(args) => operator_bench::run(&args),
        Command::BenchStartup(args) => startup_bench::run(&args),
        Command::BenchApi(args) => api_bench::run(&args),
        Command::Plugin(PluginCommand::New(args)) => plugin_new::new(&args),
        Command::Plugin(PluginCommand::Build(args)) => plugin_new::build(&args),
        Command::Plugin(PluginCommand::Inspect { wasm, json }) => plugin_cmd::inspect(&wasm, json),
        Command::Plugin(PluginCommand::Test(args)) => plugin_cmd::test(&args),
        Command::Plugin(PluginCommand::Bench(args)) => bench::run(&args),
        Command::Plugin(PluginCommand::Push(args)) => plugin_oci::push(&args),
        Command::Plugin(PluginCommand::Pull(args)) => plugin_oci::pull(&args),
        Command::Login(args) => login::run(&args),
        Command::Token(args) => token_cmd::run(&args),
        Command::Connect(args) => connect_cmd::run(&args),
        Command::Api(args) => api_cmd::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
