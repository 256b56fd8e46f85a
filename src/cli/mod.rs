//! The `hbd` command line: one file per subcommand, errors rendered once here.

mod check;
mod control;
mod fence_ack;
mod generate;
mod import;
mod keygen;
mod maintenance;
mod reload;
mod run;
mod schema;
mod standby;
mod status;
mod takeover;
mod unblock;

pub use schema::schema_json;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::DEFAULT_CONFIG_FILE;
use crate::error::Error;

#[derive(Debug, Parser)]
#[command(
    name = "hbd",
    version,
    about = "Failover daemon: Heartbeat's model, driven through systemd"
)]
pub struct Cli {
    /// Cluster configuration file.
    #[arg(long, short = 'c', global = true, default_value = DEFAULT_CONFIG_FILE, env = "HBD_CONFIG")]
    pub config: PathBuf,
    /// The control API's socket (hbd run serves it, the other commands use it).
    #[arg(long, global = true, default_value = crate::control::SOCKET, env = "HBD_SOCKET")]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and key file, print a summary (exit 0 valid, 1 invalid).
    Check(check::Args),
    /// Print the JSON schema of cluster.toml.
    Schema,
    /// Write a new random authentication key (mode 0600).
    Keygen(keygen::Args),
    /// Convert a Heartbeat v1 /etc/ha.d into cluster.toml, with a report of every change.
    Import(import::Args),
    /// Run the daemon (normally started by systemd as hbd.service).
    Run(run::Args),
    /// Show nodes, links, groups, resources and the last transitions (exit 5: hbd not running).
    Status(status::Args),
    /// Give up GROUP (default: every group) here and keep it away until a takeover here.
    Standby(standby::Args),
    /// Bring GROUP (default: every group) here: the holder releases, then this node starts.
    Takeover(takeover::Args),
    /// Stop (on) or resume (off) managing groups on this node; resources are left as they are.
    Maintenance(maintenance::Args),
    /// Clear a group left blocked or failed here, after cleaning it up by hand.
    Unblock(unblock::Args),
    /// Confirm by hand that NODE is off (powered down, fenced): a takeover waiting for its fence proceeds.
    FenceAck(fence_ack::Args),
    /// Make the running hbd reread cluster.toml and the key file.
    Reload,
    /// Write man pages or shell completions into a directory (for packaging).
    #[command(hide = true)]
    Generate(generate::Args),
}

/// Parse the command line, run the command, print any error as one sentence.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let result = match config_given_in_vain(&cli, &matches) {
        Some(e) => Err(e),
        None => dispatch(cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// `-c FILE` on the command line of a subcommand that reads no configuration is
/// refused rather than silently ignored (HBD_CONFIG in the environment is fine).
fn config_given_in_vain(cli: &Cli, matches: &clap::ArgMatches) -> Option<Error> {
    const ASKS: &str = "it asks the running hbd, which has its own; another hbd: --socket PATH";
    let given = |m: &clap::ArgMatches| {
        m.try_get_raw("config").is_ok_and(|v| v.is_some())
            && m.value_source("config") == Some(ValueSource::CommandLine)
    };
    let on_line = given(matches) || matches.subcommand().is_some_and(|(_, sub)| given(sub));
    if !on_line {
        return None;
    }
    let (name, instead) = match cli.command {
        Command::Schema => ("schema", "it prints the schema of every cluster.toml"),
        Command::Generate(_) => ("generate", "it writes man pages and completions"),
        Command::Import(_) => (
            "import",
            "it writes a configuration: name it with --output FILE",
        ),
        Command::Status(_) => ("status", ASKS),
        Command::Standby(_) => ("standby", ASKS),
        Command::Takeover(_) => ("takeover", ASKS),
        Command::Maintenance(_) => ("maintenance", ASKS),
        Command::Unblock(_) => ("unblock", ASKS),
        Command::FenceAck(_) => ("fence-ack", ASKS),
        Command::Reload => ("reload", ASKS),
        _ => return None,
    };
    Some(Error::Usage(format!(
        "hbd {name} reads no configuration, so -c/--config means nothing here ({instead})"
    )))
}

fn dispatch(cli: Cli) -> crate::error::Result<()> {
    match cli.command {
        Command::Check(a) => check::run(&cli.config, a),
        Command::Schema => schema::run(),
        Command::Keygen(a) => keygen::run(&cli.config, a),
        Command::Import(a) => import::run(&cli.config, a),
        Command::Run(a) => run::run(&cli.config, &cli.socket, a),
        Command::Status(a) => status::run(&cli.socket, a),
        Command::Standby(a) => standby::run(&cli.socket, a),
        Command::Takeover(a) => takeover::run(&cli.socket, a),
        Command::Maintenance(a) => maintenance::run(&cli.socket, a),
        Command::Unblock(a) => unblock::run(&cli.socket, a),
        Command::FenceAck(a) => fence_ack::run(&cli.socket, a),
        Command::Reload => reload::run(&cli.socket),
        Command::Generate(a) => generate::run(a),
    }
}

fn report(e: &Error) {
    match e {
        // Config errors are already "file:line:col: error: ..." lines.
        Error::Config(c @ crate::config::ConfigError::Read { .. }) => eprintln!(
            "hbd: error: {c} (write one with `hbd import` from a Heartbeat /etc/ha.d or start from examples/cluster.toml; another file: -c FILE)"
        ),
        Error::Config(c) => eprintln!("{c}"),
        // A refusal or "not running" is the answer itself.
        Error::Refused(m) | Error::NotRunning(m) => eprintln!("hbd: {m}"),
        other => eprintln!("hbd: error: {other}"),
    }
}
