//! `hookd`: parse the command line, start logging, run the subcommand, and report a
//! failure as one line: the error and its causes, each said once.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use hookd::{App, Cli, Command};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookd: {}", one_line(&error));
            // A backtrace only when asked for hookd's own errors: RUST_BACKTRACE is
            // set on many machines for other reasons.
            if std::env::var_os("RUST_LIB_BACKTRACE").is_some_and(|v| v == "1") {
                eprintln!("{}", error.backtrace());
            }
            ExitCode::FAILURE
        }
    }
}

/// The error chain joined by ": ", leaving out a cause whose text the message before
/// it already ends with (errors that print their source and also return it).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if !line.ends_with(&cause) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&cause);
        }
    }
    line
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let telemetry = hookd::telemetry::init(args.log_format);
            let app = App::build(&args).await.context("could not start")?;
            let address = app.local_addr().context("reading the bound address")?;
            tracing::info!(%address, data_dir = %args.storage.data_dir.display(), "hookd listening");
            println!("hookd: listening on http://{address}");
            let shutdown = app.shutdown_token();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutdown requested; draining in-flight requests");
                shutdown.cancel();
            });
            let served = app.run_until_stopped().await.context("serving");
            telemetry.shutdown().await;
            served?;
        }
        Command::Listen(args) => hookd::listen::run(args).await?,
        Command::RotateMasterKey(args) => {
            let rotated =
                hookd::master_key::rotate(&args).await.context("could not rotate the master key")?;
            match rotated.secrets {
                Some(count) => println!("hookd: re-sealed {count} endpoint secrets under the new master key"),
                None => println!("hookd: finished a rotation whose re-seal had already committed"),
            }
            match rotated.saved_to {
                Some(path) => println!(
                    "hookd: the new key is saved to {}; the previous one is kept beside it as {} for restoring older backups",
                    path.display(),
                    hookd::master_key::PREVIOUS_KEY_FILE
                ),
                None => println!("hookd: start every hookd on this database with the new key"),
            }
        }
    }
    Ok(())
}

/// SIGTERM (as sent by service managers) or ctrl-c.
async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
